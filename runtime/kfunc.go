package runtime

import (
	"github.com/cilium/ebpf/asm"
)

// KfuncCall emits `call name` for the kernel function name (a kfunc, BPF
// pseudo call 2) taking params parameters. Its BTF id is resolved when
// the program is loaded, in the target kernel's BTF, which must have name
// with that many parameters. Like a helper, it clobbers r0-r5.
func KfuncCall(name string, params int) asm.Instruction {
	ins := asm.Instruction{
		OpCode:   asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call),
		Src:      asm.PseudoKfuncCall,
		Constant: -1,
	}
	return withReloc(ins, &relocation{role: roleKfunc, fn: name, word: params})
}
