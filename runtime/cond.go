package runtime

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// Cond is a kernel-side condition: a comparison of values, or conditions
// combined with And, Or and Not. [Program.If] and [Probe.If] take one.
type Cond struct{ c cond }

type cond interface {
	// jump emits a jump to label taken when the condition equals want.
	jump(p *Program, want bool, label string)
}

// And is true when c and d both are; d is not evaluated when c is false.
func (c Cond) And(d Cond) Cond { return Cond{and{c.valid(), d.valid()}} }

// Or is true when c or d is; d is not evaluated when c is true.
func (c Cond) Or(d Cond) Cond { return Cond{or{c.valid(), d.valid()}} }

// Not is true when c is false.
func (c Cond) Not() Cond { return Cond{not{c.valid()}} }

func (c Cond) valid() cond {
	if c.c == nil {
		return errCond{fmt.Errorf("use of a zero Cond: conditions come from comparisons such as x.Eq(1)")}
	}
	return c.c
}

type errCond struct{ err error }

func (e errCond) jump(p *Program, _ bool, _ string) { p.fail(e.err) }

type and struct{ a, b cond }

func (x and) jump(p *Program, want bool, label string) {
	if !want {
		x.a.jump(p, false, label)
		x.b.jump(p, false, label)
		return
	}
	skip := p.Label("and")
	x.a.jump(p, false, skip)
	x.b.jump(p, true, label)
	p.Mark(skip)
}

type or struct{ a, b cond }

func (x or) jump(p *Program, want bool, label string) {
	if want {
		x.a.jump(p, true, label)
		x.b.jump(p, true, label)
		return
	}
	skip := p.Label("or")
	x.a.jump(p, true, skip)
	x.b.jump(p, false, label)
	p.Mark(skip)
}

type not struct{ a cond }

func (x not) jump(p *Program, want bool, label string) { x.a.jump(p, !want, label) }

// compare is `a op b` with op already chosen for the operands' signedness.
type compare struct {
	op   asm.JumpOp
	a, b scalar
}

func (c compare) jump(p *Program, want bool, label string) {
	op := c.op
	if !want {
		op = inverseJump[op]
	}
	a, b := c.a, c.b
	if (op == asm.JEq || op == asm.JNE) && a.size < 8 && a.size == b.size {
		// Equality depends on the low bytes alone.
		k, isConst := b.e.(constExpr)
		wide := isConst && k.v != int64(int32(k.v))
		switch {
		case a.size == 4 && (wide || a.e.ext()&b.e.ext() == 0):
			// A 32-bit jump sees the low half alone, and takes any
			// 4-byte constant as its immediate.
			emitCompare(p, op, label, a, b, (scalar).loadRaw, true)
			return
		case a.e.ext()&b.e.ext() != 0:
			// Both extended alike above their width already.
			emitCompare(p, op, label, a, b, (scalar).loadRaw, false)
			return
		}
		// A mask is shorter than a sign extension.
		a.signed, b.signed = false, false
		if isConst {
			b.e = constExpr{v: extend(k.v, k.size, false), size: k.size}
		}
	}
	emitCompare(p, op, label, a, b, (scalar).load, false)
}

// emitCompare loads a and b with load and jumps to label when a op b,
// comparing the low 32 bits alone when jmp32 is set.
func emitCompare(p *Program, op asm.JumpOp, label string, a, b scalar, load func(scalar, *Program, asm.Register, regs), jmp32 bool) {
	jumpImm, jumpReg := op.Imm, op.Reg
	if jmp32 {
		jumpImm, jumpReg = op.Imm32, op.Reg32
	}
	// Operands go to r0 first, where helpers leave their results.
	if k, ok := b.e.(constExpr); ok && (jmp32 || k.v == int64(int32(k.v))) {
		load(a, p, asm.R0, callerSaved.without(asm.R0))
		p.Emit(jumpImm(asm.R0, int32(k.v), label))
		return
	}
	switch {
	case !b.e.calls():
		load(a, p, asm.R0, callerSaved.without(asm.R0))
		load(b, p, asm.R1, callerSaved.without(asm.R0, asm.R1))
		p.Emit(jumpReg(asm.R0, asm.R1, label))
	case !a.e.calls():
		load(b, p, asm.R0, callerSaved.without(asm.R0))
		load(a, p, asm.R1, callerSaved.without(asm.R0, asm.R1))
		p.Emit(jumpReg(asm.R1, asm.R0, label))
	default:
		load(a, p, asm.R0, callerSaved.without(asm.R0))
		slot := p.tempSlot()
		p.Emit(asm.StoreMem(asm.RFP, slot, asm.R0, asm.DWord))
		load(b, p, asm.R0, callerSaved.without(asm.R0))
		p.Emit(asm.LoadMem(asm.R1, asm.RFP, slot, asm.DWord))
		p.freeSlot(slot)
		p.Emit(jumpReg(asm.R1, asm.R0, label))
	}
}

var inverseJump = map[asm.JumpOp]asm.JumpOp{
	asm.JEq: asm.JNE, asm.JNE: asm.JEq,
	asm.JGT: asm.JLE, asm.JLE: asm.JGT, asm.JGE: asm.JLT, asm.JLT: asm.JGE,
	asm.JSGT: asm.JSLE, asm.JSLE: asm.JSGT, asm.JSGE: asm.JSLT, asm.JSLT: asm.JSGE,
}

func (n Num[T]) cmp(op asm.JumpOp, v Num[T]) Cond {
	if signedOf[T]() {
		op = map[asm.JumpOp]asm.JumpOp{asm.JGT: asm.JSGT, asm.JGE: asm.JSGE, asm.JLT: asm.JSLT, asm.JLE: asm.JSLE, asm.JEq: asm.JEq, asm.JNE: asm.JNE}[op]
	}
	return Cond{compare{op: op, a: n.s(), b: v.s()}}
}

// Eq is n == c.
func (n Num[T]) Eq(c T) Cond { return n.cmp(asm.JEq, Const(c)) }

// EqV is n == v.
func (n Num[T]) EqV(v Num[T]) Cond { return n.cmp(asm.JEq, v) }

// Ne is n != c.
func (n Num[T]) Ne(c T) Cond { return n.cmp(asm.JNE, Const(c)) }

// NeV is n != v.
func (n Num[T]) NeV(v Num[T]) Cond { return n.cmp(asm.JNE, v) }

// Lt is n < c, signed when T is.
func (n Num[T]) Lt(c T) Cond { return n.cmp(asm.JLT, Const(c)) }

// LtV is n < v, signed when T is.
func (n Num[T]) LtV(v Num[T]) Cond { return n.cmp(asm.JLT, v) }

// Le is n <= c, signed when T is.
func (n Num[T]) Le(c T) Cond { return n.cmp(asm.JLE, Const(c)) }

// LeV is n <= v, signed when T is.
func (n Num[T]) LeV(v Num[T]) Cond { return n.cmp(asm.JLE, v) }

// Gt is n > c, signed when T is.
func (n Num[T]) Gt(c T) Cond { return n.cmp(asm.JGT, Const(c)) }

// GtV is n > v, signed when T is.
func (n Num[T]) GtV(v Num[T]) Cond { return n.cmp(asm.JGT, v) }

// Ge is n >= c, signed when T is.
func (n Num[T]) Ge(c T) Cond { return n.cmp(asm.JGE, Const(c)) }

// GeV is n >= v, signed when T is.
func (n Num[T]) GeV(v Num[T]) Cond { return n.cmp(asm.JGE, v) }

// NonZero is n != 0.
func (n Num[T]) NonZero() Cond { return n.Ne(0) }

// Zero is n == 0.
func (n Num[T]) Zero() Cond { return n.Eq(0) }

// HasBits is n & mask != 0.
func (n Num[T]) HasBits(mask T) Cond {
	return Cond{bitTest{a: n.s(), mask: Const(mask).s()}}
}

type bitTest struct{ a, mask scalar }

func (b bitTest) jump(p *Program, want bool, label string) {
	b.a.load(p, asm.R0, callerSaved.without(asm.R0))
	imm, isImm := fitsImm(b.mask.e)
	if !isImm {
		b.mask.load(p, asm.R1, callerSaved.without(asm.R0, asm.R1))
	}
	switch {
	case want && isImm:
		p.Emit(asm.JSet.Imm(asm.R0, imm, label))
	case want:
		p.Emit(asm.JSet.Reg(asm.R0, asm.R1, label))
	case isImm:
		p.Emit(asm.And.Imm(asm.R0, imm), asm.JEq.Imm(asm.R0, 0, label))
	default:
		p.Emit(asm.And.Reg(asm.R0, asm.R1), asm.JEq.Imm(asm.R0, 0, label))
	}
}
