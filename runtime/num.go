package runtime

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// Integer is the Go integer types a kernel-side value can have.
type Integer interface {
	uint8 | uint16 | uint32 | uint64 | int8 | int16 | int32 | int64
}

// Num is a kernel-side integer of Go type T: an argument, a member read, a
// helper's result, a map value, or a computation on those. It is a recipe,
// not a number: the program computes it where it is used (stored, compared,
// used as a key). Arithmetic follows C on T: unsigned types wrap, signed
// types compare and shift as signed.
//
// Methods whose operand is a Go constant have plain names (Add, Lt); those
// whose operand is another kernel value end in V (AddV, LtV).
type Num[T Integer] struct{ e expr }

// Sized integer values, named after their C types.
type (
	U8  = Num[uint8]
	U16 = Num[uint16]
	U32 = Num[uint32]
	U64 = Num[uint64]
	S8  = Num[int8]
	S16 = Num[int16]
	S32 = Num[int32]
	S64 = Num[int64]
)

// Value is any kernel-side integer, whatever its type.
type Value interface {
	scalar() scalar
}

func sizeOf[T Integer]() int {
	var zero T
	return int(unsafe.Sizeof(zero))
}

func signedOf[T Integer]() bool {
	var zero T
	return zero-1 < 0
}

func (n Num[T]) scalar() scalar {
	return scalar{e: n.e, size: sizeOf[T](), signed: signedOf[T]()}
}

// Size is the value's width in bytes.
func (n Num[T]) Size() int { return sizeOf[T]() }

// Signed reports whether T is a signed type.
func (n Num[T]) Signed() bool { return signedOf[T]() }

func numOf[T Integer](e expr) Num[T] { return Num[T]{e: e} }

// Const is the constant v as a kernel-side value.
func Const[T Integer](v T) Num[T] {
	return numOf[T](constExpr{v: extend(int64(v), sizeOf[T](), signedOf[T]()), size: sizeOf[T]()})
}

// Uint8 and its siblings are constants of each type: runtime.Uint64(1).
func Uint8(v uint8) U8    { return Const(v) }
func Uint16(v uint16) U16 { return Const(v) }
func Uint32(v uint32) U32 { return Const(v) }
func Uint64(v uint64) U64 { return Const(v) }
func Int8(v int8) S8      { return Const(v) }
func Int16(v int16) S16   { return Const(v) }
func Int32(v int32) S32   { return Const(v) }
func Int64(v int64) S64   { return Const(v) }

// errExpr reports err when compiled: mistakes in building a value surface
// at the first use, through the program's error.
type errExpr struct{ err error }

func (x errExpr) gen(p *Program, _ asm.Register, _ regs) { p.fail(x.err) }
func (errExpr) calls() bool                              { return false }
func (errExpr) ext() ext                                 { return extBoth }

func (n Num[T]) valid() expr {
	if n.e == nil {
		return errExpr{fmt.Errorf("use of a zero %s: values come from arguments, members, helpers, maps or Const", typeName[T]())}
	}
	return n.e
}

func typeName[T Integer]() string {
	var zero T
	return fmt.Sprintf("Num[%T]", zero)
}

func (n Num[T]) s() scalar { s := n.scalar(); s.e = n.valid(); return s }

func (n Num[T]) binC(op aluOp, c T) Num[T] {
	return numOf[T](binary{op: op, a: n.s(), b: Const(c).s()})
}

func (n Num[T]) binV(op aluOp, v Num[T]) Num[T] {
	return numOf[T](binary{op: op, a: n.s(), b: v.s()})
}

// Add is n + c.
func (n Num[T]) Add(c T) Num[T] { return n.binC(opAdd, c) }

// AddV is n + v.
func (n Num[T]) AddV(v Num[T]) Num[T] { return n.binV(opAdd, v) }

// Sub is n - c.
func (n Num[T]) Sub(c T) Num[T] { return n.binC(opSub, c) }

// SubV is n - v.
func (n Num[T]) SubV(v Num[T]) Num[T] { return n.binV(opSub, v) }

// Mul is n * c.
func (n Num[T]) Mul(c T) Num[T] { return n.binC(opMul, c) }

// MulV is n * v.
func (n Num[T]) MulV(v Num[T]) Num[T] { return n.binV(opMul, v) }

// Div is n / c, truncated toward zero; c must not be 0.
func (n Num[T]) Div(c T) Num[T] {
	if c == 0 {
		return numOf[T](errExpr{fmt.Errorf("division by the constant 0")})
	}
	return n.divide(false, Const(c))
}

// DivV is n / v, truncated toward zero; 0 when v is 0 (the BPF rule).
func (n Num[T]) DivV(v Num[T]) Num[T] { return n.divide(false, v) }

// Mod is n % c, with the sign of n; c must not be 0.
func (n Num[T]) Mod(c T) Num[T] {
	if c == 0 {
		return numOf[T](errExpr{fmt.Errorf("remainder by the constant 0")})
	}
	return n.divide(true, Const(c))
}

// ModV is n % v, with the sign of n; n when v is 0 (the BPF rule).
func (n Num[T]) ModV(v Num[T]) Num[T] { return n.divide(true, v) }

func (n Num[T]) divide(mod bool, v Num[T]) Num[T] {
	op := opDiv
	if mod {
		op = opMod
	}
	if signedOf[T]() {
		return numOf[T](signedDiv{mod: mod, a: n.s(), b: v.s()})
	}
	return n.binV(op, v)
}

// And is n & c.
func (n Num[T]) And(c T) Num[T] { return n.binC(opAnd, c) }

// AndV is n & v.
func (n Num[T]) AndV(v Num[T]) Num[T] { return n.binV(opAnd, v) }

// Or is n | c.
func (n Num[T]) Or(c T) Num[T] { return n.binC(opOr, c) }

// OrV is n | v.
func (n Num[T]) OrV(v Num[T]) Num[T] { return n.binV(opOr, v) }

// Xor is n ^ c.
func (n Num[T]) Xor(c T) Num[T] { return n.binC(opXor, c) }

// XorV is n ^ v.
func (n Num[T]) XorV(v Num[T]) Num[T] { return n.binV(opXor, v) }

// Shl is n << c; c must be below the width in bits.
func (n Num[T]) Shl(c uint) Num[T] { return n.shift(opShl, c) }

// ShlV is n << v (v taken modulo 64).
func (n Num[T]) ShlV(v Num[T]) Num[T] { return n.binV(opShl, v) }

// Shr is n >> c, arithmetic when T is signed; c must be below the width in
// bits.
func (n Num[T]) Shr(c uint) Num[T] { return n.shift(n.shr(), c) }

// ShrV is n >> v (v taken modulo 64), arithmetic when T is signed.
func (n Num[T]) ShrV(v Num[T]) Num[T] { return n.binV(n.shr(), v) }

func (n Num[T]) shr() aluOp {
	if signedOf[T]() {
		return opSar
	}
	return opShr
}

func (n Num[T]) shift(op aluOp, c uint) Num[T] {
	if c >= uint(8*sizeOf[T]()) {
		return numOf[T](errExpr{fmt.Errorf("shift of a %d-bit value by %d", 8*sizeOf[T](), c)})
	}
	return numOf[T](binary{op: op, a: n.s(), b: scalar{e: constExpr{v: int64(c), size: 8}, size: 8}})
}

// Neg is -n.
func (n Num[T]) Neg() Num[T] {
	return numOf[T](unary{a: n.s(), f: func(p *Program, dst asm.Register, _ []asm.Register) { p.Emit(asm.Neg.Imm(dst, 0)) }})
}

// Min is the smaller of n and c.
func (n Num[T]) Min(c T) Num[T] { return n.pick(Const(c), true) }

// MinV is the smaller of n and v.
func (n Num[T]) MinV(v Num[T]) Num[T] { return n.pick(v, true) }

// Max is the larger of n and c.
func (n Num[T]) Max(c T) Num[T] { return n.pick(Const(c), false) }

// MaxV is the larger of n and v.
func (n Num[T]) MaxV(v Num[T]) Num[T] { return n.pick(v, false) }

func (n Num[T]) pick(v Num[T], smaller bool) Num[T] {
	keep := asm.JLE // keep n when n <= v (for min)
	if !smaller {
		keep = asm.JGE
	}
	if signedOf[T]() {
		keep = map[asm.JumpOp]asm.JumpOp{asm.JLE: asm.JSLE, asm.JGE: asm.JSGE}[keep]
	}
	return numOf[T](choose{a: n.s(), b: v.s(), keepA: keep})
}

// Log2 is floor(log2(n)) for n > 0, and 0 for 0: the bucket of a log2
// histogram. n is taken as unsigned.
func (n Num[T]) Log2() Num[T] {
	return numOf[T](unary{a: n.s(), temps: 2, upper: extBoth, f: emitLog2})
}

// U8 converts n to an unsigned 8-bit value (C's (u8)n); its siblings
// likewise.
func (n Num[T]) U8() U8   { return convertTo[uint8](n.s()) }
func (n Num[T]) U16() U16 { return convertTo[uint16](n.s()) }
func (n Num[T]) U32() U32 { return convertTo[uint32](n.s()) }
func (n Num[T]) U64() U64 { return convertTo[uint64](n.s()) }
func (n Num[T]) S8() S8   { return convertTo[int8](n.s()) }
func (n Num[T]) S16() S16 { return convertTo[int16](n.s()) }
func (n Num[T]) S32() S32 { return convertTo[int32](n.s()) }
func (n Num[T]) S64() S64 { return convertTo[int64](n.s()) }

func convertTo[U Integer](s scalar) Num[U] {
	return numOf[U](convert{a: s, size: sizeOf[U](), signed: signedOf[U]()})
}

// choose is `a op b ? a : b`: min and max.
type choose struct {
	a, b  scalar
	keepA asm.JumpOp
}

func (c choose) calls() bool { return c.a.e.calls() || c.b.e.calls() }
func (c choose) ext() ext    { return cleanExt(c.a.signed) }
func (c choose) gen(p *Program, dst asm.Register, scratch regs) {
	scratch = scratch.without(dst)
	end := p.Label("pick")
	if imm, ok := fitsImm(c.b.e); ok {
		c.a.load(p, dst, scratch)
		p.Emit(c.keepA.Imm(dst, imm, end), asm.Mov.Imm(dst, imm))
		p.Mark(end)
		return
	}
	if c.a.e.calls() && c.b.e.calls() {
		p.fail(fmt.Errorf("min/max of two values that both call helpers: compute one into a map or event first"))
		return
	}
	t, ok := scratch.without(asm.R0).pick()
	if !ok {
		p.fail(fmt.Errorf("expression too deep: no register left"))
		return
	}
	if !c.b.e.calls() {
		// dst = a; t = b; if !(a keep b) dst = b
		c.a.load(p, dst, scratch)
		c.b.load(p, t, scratch.without(t))
		p.Emit(c.keepA.Reg(dst, t, end), asm.Mov.Reg(dst, t))
	} else {
		// dst = b (it calls helpers, so first); t = a; if (a keep b) dst = a
		c.b.load(p, dst, scratch)
		c.a.load(p, t, scratch.without(t))
		p.Emit(inverseJump[c.keepA].Reg(t, dst, end), asm.Mov.Reg(dst, t))
	}
	p.Mark(end)
}

// signedDiv is a / b or a % b on signed values: BPF divides unsigned, so
// the magnitudes are divided and the sign fixed (C truncates toward zero;
// the remainder takes a's sign).
type signedDiv struct {
	mod  bool
	a, b scalar
}

func (d signedDiv) calls() bool { return d.a.e.calls() || d.b.e.calls() }
func (d signedDiv) ext() ext    { return extNone }
func (d signedDiv) gen(p *Program, dst asm.Register, scratch regs) {
	scratch = scratch.without(dst)
	if d.a.e.calls() && d.b.e.calls() {
		p.fail(fmt.Errorf("signed division of two values that both call helpers: compute one into a map or event first"))
		return
	}
	rb, sign := asm.Register(0), asm.Register(0)
	var ok1, ok2 bool
	if d.b.e.calls() {
		d.b.load(p, dst, scratch)
		rb, ok1 = scratch.without(asm.R0).pick()
		p.Emit(asm.Mov.Reg(rb, dst))
		d.a.load(p, dst, scratch.without(rb))
	} else {
		d.a.load(p, dst, scratch)
		rb, ok1 = scratch.pick()
		d.b.load(p, rb, scratch.without(rb))
	}
	sign, ok2 = scratch.without(rb).pick()
	if !ok1 || !ok2 {
		p.fail(fmt.Errorf("expression too deep: no register left"))
		return
	}
	aPos, bPos, done := p.Label("sdiv_a"), p.Label("sdiv_b"), p.Label("sdiv_done")
	p.Emit(
		asm.Mov.Imm(sign, 0),
		asm.JSGE.Imm(dst, 0, aPos),
		asm.Neg.Imm(dst, 0),
		asm.Mov.Imm(sign, 1),
	)
	p.Mark(aPos)
	p.Emit(asm.JSGE.Imm(rb, 0, bPos), asm.Neg.Imm(rb, 0))
	if !d.mod {
		p.Emit(asm.Xor.Imm(sign, 1))
	}
	p.Mark(bPos)
	op := asm.Div
	if d.mod {
		op = asm.Mod
	}
	p.Emit(op.Reg(dst, rb), asm.JEq.Imm(sign, 0, done), asm.Neg.Imm(dst, 0))
	p.Mark(done)
}

// emitLog2 leaves floor(log2(dst)) in dst (0 for 0 and 1), halving the
// range with five tests and shifts: the same buckets as bcc's log2l. r and
// h are scratch.
func emitLog2(p *Program, dst asm.Register, t []asm.Register) {
	r, h := t[0], t[1]
	lo := p.Label("log2")
	p.Emit(
		asm.Mov.Imm(r, 0),
		asm.Mov.Reg(h, dst),
		asm.RSh.Imm(h, 32),
		asm.JEq.Imm(h, 0, lo),
		asm.Mov.Reg(dst, h),
		asm.Mov.Imm(r, 32),
	)
	p.Mark(lo)
	for _, step := range []struct {
		limit int32
		shift int32
	}{{0xffff, 16}, {0xff, 8}, {0xf, 4}, {0x3, 2}} {
		next := p.Label("log2")
		p.Emit(
			asm.JLE.Imm(dst, step.limit, next),
			asm.RSh.Imm(dst, step.shift),
			asm.Add.Imm(r, step.shift),
		)
		p.Mark(next)
	}
	// dst is now 0..3: floor(log2) adds dst >> 1.
	p.Emit(asm.RSh.Imm(dst, 1), asm.Add.Reg(dst, r))
}
