package runtime

import "github.com/cilium/ebpf/asm"

// noArgHelpers read no memory: calls to them may sit between a stack store
// and its overwrite.
var noArgHelpers = map[asm.BuiltinFunc]bool{
	asm.FnKtimeGetNs: true, asm.FnKtimeGetBootNs: true, asm.FnGetCurrentPidTgid: true,
	asm.FnGetCurrentUidGid: true, asm.FnGetSmpProcessorId: true, asm.FnGetCurrentTask: true,
	asm.FnGetCurrentTaskBtf: true, asm.FnGetPrandomU32: true,
}

// dropDeadStores removes immediate stores to the stack (a view's or a
// key's zeroing) that straight-line code overwrites whole before anything
// could read them: `*(fp-48) = 0; r0 = ktime(); *(fp-48) = r0` keeps the
// second store only. A store stays when, before its overwrite, the path
// jumps or exits, calls a helper that takes arguments, makes a pointer to
// the stack, reads or partly writes the slot, or goes through memory by a
// register that may point at the stack. Labels do not matter: paths that
// join later never ran the store.
func dropDeadStores(insns asm.Instructions) asm.Instructions {
	ctx := ctxRegister(insns)
	out := insns[:0:0]
	for i, ins := range insns {
		if ins.Symbol() != "" || !isStackImmStore(ins) || !overwritten(insns, i, ctx) {
			out = append(out, ins)
		}
	}
	return out
}

func isStackImmStore(ins asm.Instruction) bool {
	return ins.OpCode.Class() == asm.StClass && ins.OpCode.Mode() == asm.MemMode && ins.Dst == asm.RFP
}

// ctxRegister is r6 when the program starts `r6 = r1` and never writes r6
// again (the ctx, which is no stack pointer), else a register no
// instruction uses as a base.
func ctxRegister(insns asm.Instructions) asm.Register {
	if !ctxPrologue(insns) {
		return asm.RFP
	}
	for _, ins := range insns[1:] {
		if _, sets := settingOf(ins); sets && ins.Dst == asm.R6 {
			return asm.RFP
		}
		if ins.OpCode.Class() == asm.StXClass && ins.OpCode.Mode() == asm.AtomicMode && ins.Src == asm.R6 {
			return asm.RFP // a fetching atomic writes its source
		}
	}
	return asm.R6
}

// overwritten says whether the stack store insns[i] is overwritten whole
// before any instruction could read it, in straight-line code.
func overwritten(insns asm.Instructions, i int, ctx asm.Register) bool {
	st := insns[i]
	lo, hi := int(st.Offset), int(st.Offset)+st.OpCode.Size().Sizeof()
	// safe are registers that hold no stack pointer: the ctx, and those
	// set in the window by loads, calls or moves of safe registers. A load
	// gives no stack pointer: programs never store one (not in maps, which
	// the verifier forbids, nor spilled: key and value pointers are made
	// right before their helper call).
	var safe [asm.RFP + 1]bool
	if ctx != asm.RFP {
		safe[ctx] = true
	}
	for _, ins := range insns[i+1:] {
		op := ins.OpCode
		switch cls := op.Class(); {
		case cls.IsJump():
			if op.JumpOp() != asm.Call || ins.IsKfuncCall() || ins.IsFunctionCall() || !noArgHelpers[asm.BuiltinFunc(ins.Constant)] {
				return false
			}
			safe[asm.R0] = true
			for r := asm.R1; r <= asm.R5; r++ {
				safe[r] = false
			}
		case cls == asm.LdXClass || cls == asm.StXClass || cls == asm.StClass:
			base := ins.Dst
			if cls == asm.LdXClass {
				base = ins.Src
			}
			if base != asm.RFP {
				if !safe[base] {
					return false
				}
			} else if a, b := int(ins.Offset), int(ins.Offset)+op.Size().Sizeof(); a < hi && b > lo {
				// Touches the slot: dead only under a plain store of all of it.
				return cls != asm.LdXClass && op.Mode() == asm.MemMode && a <= lo && b >= hi
			}
			if cls == asm.LdXClass {
				safe[ins.Dst] = true
			} else if op.Mode() == asm.AtomicMode && ins.Src != asm.RFP {
				// Fetching atomics write their source register (and r0).
				safe[ins.Src], safe[asm.R0] = false, false
			}
		case cls.IsALU():
			if op.Source() == asm.RegSource && ins.Src == asm.RFP {
				return false // a pointer to the stack
			}
			regSafe := op.Source() == asm.ImmSource || safe[ins.Src]
			if op.ALUOp() == asm.Mov {
				safe[ins.Dst] = regSafe
			} else {
				safe[ins.Dst] = safe[ins.Dst] && regSafe
			}
		case cls == asm.LdClass:
			safe[ins.Dst] = true // a constant, or a map's or global's address
		default:
			return false
		}
	}
	return false
}
