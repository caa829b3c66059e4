package runtime

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
)

// TestSwapRegs: a lookup's callback that calls no helper keeps the value's
// pointer in r0 by swapping r0 and the held register in its instructions,
// registers only where the instruction has them.
func TestSwapRegs(t *testing.T) {
	for _, tc := range []struct{ in, want asm.Instruction }{
		{asm.Mov.Imm(asm.R0, 1), asm.Mov.Imm(asm.R9, 1)},
		{asm.Mov.Reg(asm.R1, asm.R0), asm.Mov.Reg(asm.R1, asm.R9)},
		{asm.LoadMem(asm.R0, asm.R9, 8, asm.DWord), asm.LoadMem(asm.R9, asm.R0, 8, asm.DWord)},
		{asm.StoreMem(asm.R9, 0, asm.R0, asm.Word), asm.StoreMem(asm.R0, 0, asm.R9, asm.Word)},
		{asm.JEq.Imm(asm.R0, 0, "x"), asm.JEq.Imm(asm.R9, 0, "x")},
		{asm.StoreImm(asm.R9, 0, 1, asm.Word), asm.StoreImm(asm.R0, 0, 1, asm.Word)},
		{asm.LoadMapValue(asm.R0, 0, 0), asm.LoadMapValue(asm.R9, 0, 0)},
	} {
		got := tc.in
		swapRegs(&got, asm.R0, asm.R9)
		assert.Equal(t, tc.want, got, "%v", tc.in)
	}
}
