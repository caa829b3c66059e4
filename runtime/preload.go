package runtime

import "github.com/cilium/ebpf/asm"

// preloadCtx turns `r6 = r1` into `r6 = ctx[slot]` when the program reads
// one ctx slot only, in one size: every read of it becomes `dst = r6`, and
// `dst = r6; dst = *(dst + off)` becomes `dst = *(r6 + off)`. A program
// that needs one argument after its helper calls then keeps the argument,
// not the ctx, as clang does.
func preloadCtx(insns asm.Instructions) asm.Instructions {
	if len(insns) < 2 || !ctxPrologue(insns) {
		return insns
	}
	var uses []int
	for i, ins := range insns[1:] {
		i++
		cls := ins.OpCode.Class()
		switch {
		case cls.IsJump():
			if ins.Dst == CtxReg || usesSrc(ins.OpCode) && ins.Src == CtxReg {
				return insns // the ctx compared
			}
			continue
		case ins.Dst == CtxReg:
			return insns // r6 written, or the ctx written through
		case cls == asm.LdXClass && ins.Src == CtxReg:
		case usesSrc(ins.OpCode) && ins.Src == CtxReg:
			return insns // the ctx copied or stored
		default:
			continue
		}
		if ins.OpCode.Mode() != asm.MemMode {
			return insns
		}
		if len(uses) > 0 {
			first := insns[uses[0]]
			if ins.OpCode != first.OpCode || ins.Offset != first.Offset || !sameSlot(relocOf(&ins), relocOf(&first)) {
				return insns
			}
		}
		uses = append(uses, i)
	}
	if len(uses) == 0 {
		return insns
	}
	out := make(asm.Instructions, 0, len(insns))
	// The load, with its relocation but not its label (which stays with
	// the move at its place).
	first := insns[uses[0]]
	pre := asm.Instruction{OpCode: first.OpCode, Dst: CtxReg, Src: asm.R1, Offset: first.Offset}
	if r := relocOf(&first); r != nil {
		pre = withReloc(pre, r)
	}
	out = append(out, pre)
	next := 1
	for _, i := range uses {
		out = append(out, insns[next:i]...)
		load := insns[i]
		mov := asm.Mov.Reg(load.Dst, CtxReg)
		if sym := load.Symbol(); sym != "" {
			mov = mov.WithSymbol(sym)
		}
		if f := insns[i+1 : min(i+2, len(insns))]; len(f) == 1 && mov.Symbol() == "" && f[0].Symbol() == "" &&
			f[0].OpCode.Class() == asm.LdXClass && f[0].OpCode.Mode() == asm.MemMode && f[0].Src == load.Dst && f[0].Dst == load.Dst {
			// The loaded pointer is read at once: read through r6.
			deref := f[0]
			deref.Src = CtxReg
			out = append(out, deref)
			next = i + 2
			continue
		}
		out = append(out, mov)
		next = i + 1
	}
	return append(out, insns[next:]...)
}

// sameSlot says whether two ctx loads' relocations name one slot.
func sameSlot(a, b *relocation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.role == b.role && a.fn == b.fn && a.arg == b.arg && a.tp == b.tp && a.word == b.word && a.size == b.size && !a.multi && !b.multi
}
