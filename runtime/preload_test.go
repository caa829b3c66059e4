package runtime

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPreloadCtx(t *testing.T) {
	arg := func(dst asm.Register, name string, slot int16) asm.Instruction {
		return withReloc(asm.LoadMem(dst, CtxReg, 8*slot, asm.DWord), &relocation{role: roleArgSlot, fn: "f", arg: name})
	}
	prologue := asm.Mov.Reg(CtxReg, asm.R1)
	call := asm.FnKtimeGetNs.Call()
	deref := asm.LoadMem(asm.R0, asm.R0, 88, asm.DWord)
	store := asm.StoreMem(asm.R9, 0, asm.R0, asm.DWord)

	// One slot read once, then dereferenced: loaded first, read through r6.
	in := asm.Instructions{prologue, call, arg(asm.R0, "mapping", 0), deref, store}
	got := preloadCtx(in)
	pre := arg(CtxReg, "mapping", 0)
	pre.Src = asm.R1
	assert.Equal(t, asm.Instructions{pre, call, asm.LoadMem(asm.R0, CtxReg, 88, asm.DWord), store}, got)
	assert.NotNil(t, relocOf(&got[0]), "the relocation moves with the load")

	// Read twice: each read a move.
	in = asm.Instructions{prologue, arg(asm.R1, "mapping", 0), call, arg(asm.R2, "mapping", 0)}
	assert.Equal(t, asm.Instructions{pre, asm.Mov.Reg(asm.R1, CtxReg), call, asm.Mov.Reg(asm.R2, CtxReg)}, preloadCtx(in))

	// Two slots, the ctx passed to a helper, or r6 written: unchanged.
	for name, in := range map[string]asm.Instructions{
		"two slots":  {prologue, arg(asm.R0, "mapping", 0), arg(asm.R1, "folio", 1)},
		"ctx passed": {prologue, arg(asm.R0, "mapping", 0), asm.Mov.Reg(asm.R1, CtxReg), call},
		"r6 written": {prologue, arg(asm.R0, "mapping", 0), asm.Mov.Imm(CtxReg, 0)},
		"r6 loaded":  {prologue, arg(asm.R0, "mapping", 0), asm.LoadMem(CtxReg, asm.R0, 0, asm.DWord)},
		"ctx stored": {prologue, arg(asm.R0, "mapping", 0), asm.StoreMem(asm.RFP, -8, CtxReg, asm.DWord)},
		"ctx tested": {prologue, arg(asm.R0, "mapping", 0), asm.JEq.Imm(CtxReg, 0, "x")},
		"no read":    {prologue, call},
	} {
		assert.Equal(t, in, preloadCtx(in), name)
	}
}

// TestPreloadCtxLabel: a label on the load stays where it was.
func TestPreloadCtxLabel(t *testing.T) {
	load := withReloc(asm.LoadMem(asm.R0, CtxReg, 8, asm.DWord), &relocation{role: roleArgSlot, fn: "f", arg: "x"})
	in := asm.Instructions{asm.Mov.Reg(CtxReg, asm.R1), asm.FnKtimeGetNs.Call(), load.WithSymbol("here"), asm.Return()}
	got := preloadCtx(in)
	require.Len(t, got, 4)
	assert.Equal(t, "", got[0].Symbol())
	assert.NotNil(t, relocOf(&got[0]))
	assert.Equal(t, "here", got[2].Symbol())
	assert.Equal(t, asm.Mov.Reg(asm.R0, CtxReg).WithSymbol("here"), got[2])
}
