package runtime

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/asm"
)

// dropRedundant removes instructions that set a register to what it
// already holds in straight-line code: a constant, a map's address or a
// global's value address, or a stack slot's value, set again before
// anything changed the register (or the slot). Two counter updates of one
// global then share its address and the constant or the spilled value they
// add. Knowledge ends at labels (other paths meet there), at calls (r0-r5
// are clobbered, and helpers may write the stack through pointers) and at
// any other write to the register; a slot's value ends at a store that may
// reach the stack.
func dropRedundant(insns asm.Instructions) asm.Instructions {
	var known [asm.RFP + 1]string
	forget := func() { known = [asm.RFP + 1]string{} }
	forgetStack := func() {
		for r := range known {
			if strings.HasPrefix(known[r], "stack ") {
				known[r] = ""
			}
		}
	}
	out := insns[:0:0]
	for _, ins := range insns {
		if ins.Symbol() != "" {
			forget()
		}
		key, sets := settingOf(ins)
		if sets && key != "" && ins.Symbol() == "" && known[ins.Dst] == key {
			continue
		}
		out = append(out, ins)
		if cls := ins.OpCode.Class(); (cls == asm.StXClass || cls == asm.StClass) &&
			(ins.Dst == asm.RFP || !strings.HasPrefix(known[ins.Dst], "ld ")) {
			// A store to the stack, or through a pointer that is not a
			// map's or a global's address.
			forgetStack()
		}
		switch {
		case ins.OpCode.JumpOp() == asm.Call && ins.OpCode.Class().IsJump():
			for r := asm.R0; r <= asm.R5; r++ {
				known[r] = ""
			}
			forgetStack()
		case ins.OpCode.Class() == asm.StXClass && ins.OpCode.Mode() == asm.AtomicMode:
			// Plain atomic adds, ands, ors and xors write only memory;
			// the fetching forms, exchanges and loads write registers.
			switch ins.OpCode.AtomicOp() {
			case asm.AddAtomic, asm.AndAtomic, asm.OrAtomic, asm.XorAtomic:
			case asm.FetchAdd, asm.FetchAnd, asm.FetchOr, asm.FetchXor, asm.Xchg, asm.CmpXchg:
				known[ins.Src], known[asm.R0] = "", ""
			default:
				known[ins.Src], known[ins.Dst], known[asm.R0] = "", "", ""
			}
		case sets:
			known[ins.Dst] = key
		}
	}
	return out
}

// settingOf says whether ins writes its destination register and, when
// what it writes is known without running the program, a key naming that
// value.
func settingOf(ins asm.Instruction) (string, bool) {
	switch ins.OpCode.Class() {
	case asm.ALU64Class:
		if ins.OpCode.ALUOp() == asm.Mov && ins.OpCode.Source() == asm.ImmSource {
			return fmt.Sprintf("imm %d", ins.Constant), true
		}
		return "", true
	case asm.LdXClass:
		if ins.Src == asm.RFP && ins.OpCode.Mode() == asm.MemMode && ins.Dst != asm.RFP {
			return fmt.Sprintf("stack %d %d", ins.Offset, ins.OpCode.Size()), true
		}
		return "", true
	case asm.ALUClass:
		return "", true
	case asm.LdClass:
		if ins.OpCode.Mode() == asm.ImmMode && ins.OpCode.Size() == asm.DWord {
			return fmt.Sprintf("ld %d %d %q", ins.Src, ins.Constant, ins.Reference()), true
		}
		return "", true
	}
	return "", false
}
