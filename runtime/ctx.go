package runtime

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// ctxLoad is `dst = ((u64 *)ctx)[slot]` relocated by r: an argument or the
// return value. The slot holds a whole u64; narrower values leave the
// caller's bits above their width.
//
// A multi-link program cannot read ctx: it calls bpf_get_func_arg or
// bpf_get_func_ret instead, its slot relocated for every function.
func ctxLoad(c Ctx, r *relocation, slot, size int) expr {
	multi := c.program().multiLink()
	r.multi = multi
	return genFunc{
		f: func(p *Program, dst asm.Register, _ regs) {
			if r.role == roleRetSlot && p.sess != nil && !inPart(p, partExit, "the return value") {
				return
			}
			if r.role == roleRetSlot && (p.info.Kind == Fentry || p.info.Kind == TpBtf) {
				p.fail(fmt.Errorf("%s programs have no return value", p.info.Kind))
				return
			}
			if multi {
				multiLoad(p, dst, r, slot)
				return
			}
			p.Emit(withReloc(LoadCtx(dst, CtxReg, slot), r))
		},
		helper: multi,
		upper:  extNone, // a narrow argument's slot holds the caller's bits above it
	}
}

// Arg is argument name of the traced function, of Go type T:
// `((u64 *)ctx)[slot]` narrowed to T. slot is what BTF said at generate
// time; the load is relocated to the target kernel's slot for name, and the
// target's argument must be as wide as T.
func Arg[T Integer](c Ctx, name string, slot int) Num[T] {
	p := c.program()
	return numOf[T](ctxLoad(c, &relocation{role: roleArgSlot, fn: p.info.Target, tp: p.info.Kind.Tracepoint(), arg: name, size: sizeOf[T]()}, slot, sizeOf[T]()))
}

// ArgWord is word w (0 or 1) of a struct or union argument passed by value
// in two slots (9 to 16 bytes): `((u64 *)ctx)[slot + w]`, the whole u64.
// The slot is relocated by name like [Arg].
func ArgWord(c Ctx, name string, slot, w int) U64 {
	p := c.program()
	if w < 0 || w > 1 {
		return numOf[uint64](errExpr{fmt.Errorf("argument %s: word %d of a by-value struct (want 0 or 1)", name, w)})
	}
	return numOf[uint64](ctxLoad(c, &relocation{role: roleArgSlot, fn: p.info.Target, tp: p.info.Kind.Tracepoint(), arg: name, word: w}, slot+w, 8))
}

// Ret is the traced function's return value (fexit) or the previous
// fmod_ret result (fmod_ret), of Go type T: `((u64 *)ctx)[nrSlots]`.
// nrSlots is relocated like an argument slot.
func Ret[T Integer](c Ctx, nrSlots int) Num[T] {
	p := c.program()
	return numOf[T](ctxLoad(c, &relocation{role: roleRetSlot, fn: p.info.Target, size: sizeOf[T]()}, nrSlots, sizeOf[T]()))
}

// ArgPtr is a pointer argument to the struct or union called typ: member
// reads through it are direct loads (the verifier types it from BTF), but
// in a multi-link program, where it is untyped, copies through
// bpf_probe_read_kernel.
func ArgPtr(c Ctx, name string, slot int, typ string) Ptr {
	return Ptr{addr: Arg[uint64](c, name, slot).e, typ: typ, trusted: !c.program().multiLink()}
}

// RetPtr is a pointer return value (fexit) to the struct or union called
// typ, typed by the verifier like a pointer argument.
func RetPtr(c Ctx, nrSlots int, typ string) Ptr {
	return Ptr{addr: Ret[uint64](c, nrSlots).e, typ: typ, trusted: !c.program().multiLink()}
}
