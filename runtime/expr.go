package runtime

import (
	"fmt"
	"math/bits"

	"github.com/cilium/ebpf/asm"
)

// expr is a kernel-side integer computation: a tree whose leaves are ctx
// slots, member reads, helper calls, memory and constants. It is compiled
// where it is used, so a value used twice is computed twice.
type expr interface {
	// gen emits code leaving the value in dst, with the bits above its
	// width as ext() says. gen may clobber the registers in scratch and,
	// when calls() is true, all of r0-r5.
	gen(p *Program, dst asm.Register, scratch regs)
	// calls reports whether computing the value calls a helper.
	calls() bool
	// ext says what gen leaves above the value's width.
	ext() ext
}

// ext is what a register holds above a value's width: zeroes, copies of
// its sign bit, both (a small non-negative value), or anything.
type ext uint8

const (
	extNone ext = 0
	extZero ext = 1 << iota
	extSign
	extBoth = extZero | extSign
)

// constExt is what a register holding the 64-bit value v has above size
// bytes.
func constExt(v int64, size int) ext {
	if size >= 8 {
		return extBoth
	}
	var e ext
	if extend(v, size, false) == v {
		e |= extZero
	}
	if extend(v, size, true) == v {
		e |= extSign
	}
	return e
}

// cleanExt is the ext a value of that signedness needs.
func cleanExt(signed bool) ext {
	if signed {
		return extSign
	}
	return extZero
}

// regs is a set of registers.
type regs uint16

func regsOf(rs ...asm.Register) regs {
	var s regs
	for _, r := range rs {
		s |= 1 << r
	}
	return s
}

// callerSaved are r0-r5: what a helper call clobbers and where expressions
// compute.
var callerSaved = regsOf(asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5)

func (s regs) has(r asm.Register) bool { return s&(1<<r) != 0 }

func (s regs) without(rs ...asm.Register) regs { return s &^ regsOf(rs...) }

// pick returns the lowest register in s.
func (s regs) pick() (asm.Register, bool) {
	if s == 0 {
		return 0, false
	}
	return asm.Register(bits.TrailingZeros16(uint16(s))), true
}

// scalar is an integer value of a known width and signedness: what every
// typed value ([Num]) carries.
type scalar struct {
	e      expr
	size   int
	signed bool
}

// load emits code leaving s in dst, extended to 64 bits.
func (s scalar) load(p *Program, dst asm.Register, scratch regs) {
	s.e.gen(p, dst, scratch.without(dst))
	if !s.clean() {
		p.emitAll(extendTo(dst, s.size, s.signed))
	}
}

// clean reports whether gen leaves s extended as its type wants.
func (s scalar) clean() bool {
	return s.size >= 8 || s.e.ext()&cleanExt(s.signed) != 0
}

// extendTo emits the shortest extension of dst's low size bytes: a mask or
// a 32-bit move (which zeroes the upper half) for unsigned values, two
// shifts for signed ones.
func extendTo(dst asm.Register, size int, signed bool) asm.Instructions {
	switch {
	case size >= 8 || size <= 0:
		return nil
	case signed:
		return Narrow(dst, size, true)
	case size == 4:
		return asm.Instructions{asm.Mov.Reg32(dst, dst)}
	}
	return asm.Instructions{asm.And.Imm(dst, int32(1)<<(8*size)-1)}
}

// loadRaw emits code leaving s in dst with whatever bits lie above its
// width: enough for a store of exactly size bytes.
func (s scalar) loadRaw(p *Program, dst asm.Register, scratch regs) {
	s.e.gen(p, dst, scratch.without(dst))
}

// constExpr is a constant, held as the 64-bit value a register would hold
// for a value of size bytes.
type constExpr struct {
	v    int64
	size int
}

func (c constExpr) gen(p *Program, dst asm.Register, _ regs) {
	if c.v == int64(int32(c.v)) {
		p.Emit(asm.Mov.Imm(dst, int32(c.v)))
		return
	}
	p.Emit(asm.LoadImm(dst, c.v, asm.DWord))
}
func (constExpr) calls() bool { return false }
func (c constExpr) ext() ext  { return constExt(c.v, c.size) }

// fitsImm reports whether e is a constant an instruction can carry as its
// sign-extended 32-bit immediate.
func fitsImm(e expr) (int32, bool) {
	c, ok := e.(constExpr)
	if !ok || c.v != int64(int32(c.v)) {
		return 0, false
	}
	return int32(c.v), true
}

// extend sign- or zero-extends v from size bytes to the 64 bits a register
// holds.
func extend(v int64, size int, signed bool) int64 {
	if size >= 8 {
		return v
	}
	shift := 64 - 8*size
	if signed {
		return v << shift >> shift
	}
	return int64(uint64(v) << shift >> shift)
}

// genFunc is a leaf computed by a function: helper calls, ctx loads,
// member reads.
type genFunc struct {
	f      func(p *Program, dst asm.Register, scratch regs)
	helper bool
	upper  ext
}

func (g genFunc) gen(p *Program, dst asm.Register, scratch regs) { g.f(p, dst, scratch) }
func (g genFunc) calls() bool                                    { return g.helper }
func (g genFunc) ext() ext                                       { return g.upper }

// aluOp is a two-operand operation.
type aluOp struct {
	op          asm.ALUOp
	commutative bool
}

var (
	opAdd = aluOp{asm.Add, true}
	opSub = aluOp{asm.Sub, false}
	opMul = aluOp{asm.Mul, true}
	opDiv = aluOp{asm.Div, false}
	opMod = aluOp{asm.Mod, false}
	opAnd = aluOp{asm.And, true}
	opOr  = aluOp{asm.Or, true}
	opXor = aluOp{asm.Xor, true}
	opShl = aluOp{asm.LSh, false}
	opShr = aluOp{asm.RSh, false}
	opSar = aluOp{asm.ArSh, false}
)

// binary is `a op b`. Operands that need it are extended first: division,
// remainder and right shifts read the bits above the width.
type binary struct {
	op   aluOp
	a, b scalar
}

func (x binary) calls() bool { return x.a.e.calls() || x.b.e.calls() }

func (x binary) ext() ext {
	if x.a.size >= 8 {
		return extBoth
	}
	switch x.op.op {
	case asm.Div, asm.Mod, asm.RSh, asm.ArSh:
		// Of extended operands: extended as the type wants.
		return cleanExt(x.a.signed)
	case asm.And:
		// Zeroes above the width in either operand stay zeroes.
		a, b := x.a.e.ext(), x.b.e.ext()
		return a&b | (a|b)&extZero
	case asm.Or, asm.Xor:
		return x.a.e.ext() & x.b.e.ext()
	}
	return extNone
}

// operandsClean reports whether the operation needs extended inputs.
func (x binary) needsClean() bool {
	switch x.op.op {
	case asm.Div, asm.Mod, asm.RSh, asm.ArSh:
		return true
	}
	return false
}

func (x binary) loadOperand(p *Program, s scalar, dst asm.Register, scratch regs) {
	if x.needsClean() {
		s.load(p, dst, scratch)
	} else {
		s.loadRaw(p, dst, scratch)
	}
}

func (x binary) gen(p *Program, dst asm.Register, scratch regs) {
	scratch = scratch.without(dst)
	if imm, ok := fitsImm(x.b.e); ok {
		x.loadOperand(p, x.a, dst, scratch)
		p.Emit(x.op.op.Imm(dst, imm))
		return
	}
	switch {
	case !x.b.e.calls():
		x.loadOperand(p, x.a, dst, scratch)
		t, ok := scratch.pick()
		if !ok {
			p.fail(fmt.Errorf("expression too deep: no register left"))
			return
		}
		x.loadOperand(p, x.b, t, scratch.without(t))
		p.Emit(x.op.op.Reg(dst, t))
	case !x.a.e.calls():
		x.loadOperand(p, x.b, dst, scratch)
		t, ok := scratch.without(asm.R0).pick()
		if !ok {
			p.fail(fmt.Errorf("expression too deep: no register left"))
			return
		}
		x.loadOperand(p, x.a, t, scratch.without(t))
		if x.op.commutative {
			p.Emit(x.op.op.Reg(dst, t))
			return
		}
		p.Emit(x.op.op.Reg(t, dst), asm.Mov.Reg(dst, t))
	default:
		// Both sides call helpers: a waits on the stack.
		x.loadOperand(p, x.a, dst, scratch)
		slot := p.tempSlot()
		p.Emit(asm.StoreMem(asm.RFP, slot, dst, asm.DWord))
		x.loadOperand(p, x.b, dst, scratch)
		t, _ := scratch.without(asm.R0).pick()
		p.Emit(asm.LoadMem(t, asm.RFP, slot, asm.DWord))
		p.freeSlot(slot)
		if x.op.commutative {
			p.Emit(x.op.op.Reg(dst, t))
			return
		}
		p.Emit(x.op.op.Reg(t, dst), asm.Mov.Reg(dst, t))
	}
}

// unary is a computation of one operand, emitted by f with dst holding
// the operand extended and temps scratch registers.
type unary struct {
	a     scalar
	temps int
	f     func(p *Program, dst asm.Register, temps []asm.Register)
	upper ext
}

func (u unary) calls() bool { return u.a.e.calls() }
func (u unary) ext() ext    { return u.upper }
func (u unary) gen(p *Program, dst asm.Register, scratch regs) {
	scratch = scratch.without(dst)
	u.a.load(p, dst, scratch)
	var temps []asm.Register
	for range u.temps {
		t, ok := scratch.pick()
		if !ok {
			p.fail(fmt.Errorf("expression too deep: no register left"))
			return
		}
		temps = append(temps, t)
		scratch = scratch.without(t)
	}
	u.f(p, dst, temps)
}

// convert changes a value's width or signedness as a C cast does:
// widening extends by the old type's signedness, narrowing keeps the low
// bits.
type convert struct {
	a      scalar
	size   int
	signed bool
}

func (c convert) calls() bool { return c.a.e.calls() }

func (c convert) ext() ext {
	switch {
	case c.size == c.a.size:
		// The same bits, another type.
		return c.a.e.ext()
	case c.size > c.a.size:
		// Extended as the old type wants, which extends the new width
		// alike.
		return cleanExt(c.a.signed)
	}
	return extNone
}

func (c convert) gen(p *Program, dst asm.Register, scratch regs) {
	if c.size > c.a.size {
		c.a.load(p, dst, scratch)
		return
	}
	c.a.loadRaw(p, dst, scratch)
}
