package runtime

// Let computes v once, here, into 8 bytes of the program's stack, and
// returns the value that reads it back: `tmp = v; ... tmp`. A value is
// otherwise a recipe computed where it is used, so one used twice, or
// used inside a later callback, is computed again there; Let pins a
// helper's result (a time, a pid) to this point of the program, as a C
// local variable does. Use the result only where the program has passed
// this point (not in a branch that skipped it).
func Let[T Integer](c Ctx, v Num[T]) Num[T] {
	p := c.program()
	m := mem{stack: p.Alloc(8), size: 8}
	m.store(p, 0, v.s())
	return numOf[T](memLoad{m: m, size: sizeOf[T](), signed: signedOf[T]()})
}
