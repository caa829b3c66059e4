package runtime_test

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/runtime"
)

// TestLet proves Let calls the helper once, where it stands, and that each
// use reads the stack slot back (signed narrow values sign-extended).
func TestLet(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "let", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
	now := runtime.Let(p, runtime.KtimeNs())
	p.Load(asm.R7, now.Add(1))
	p.Load(asm.R8, now)
	w := runtime.Let(p, runtime.Arg[int32](p, "whence", 2))
	p.Load(asm.R9, w)
	require.NoError(t, p.Err())
	insns, err := p.Instructions()
	require.NoError(t, err)
	ldxw := asm.LoadMemOp(asm.Word)
	stxdw, stxw := asm.StoreMemOp(asm.DWord), asm.StoreMemOp(asm.Word)
	assert.Equal(t, []raw{
		{ldxdw, asm.R6, asm.R1, 16, 0},                    // r6 = ctx[2]: the one slot read, preloaded
		{call, 0, 0, 0, int64(asm.FnKtimeGetNs)},          // now = bpf_ktime_get_ns()
		{stxdw, asm.RFP, asm.R0, -8, 0},                   // *(u64 *)(fp - 8) = now
		{ldxdw, asm.R7, asm.RFP, -8, 0},                   // r7 = *(u64 *)(fp - 8)
		{addi, asm.R7, 0, 0, 1},                           //    + 1
		{ldxdw, asm.R8, asm.RFP, -8, 0},                   // r8 = *(u64 *)(fp - 8)
		{movr, asm.R0, asm.R6, 0, 0},                      // whence = ctx[2]
		{stxw, asm.RFP, asm.R0, -16, 0},                   // *(s32 *)(fp - 16) = whence
		{ldxw, asm.R9, asm.RFP, -16, 0},                   // r9 = *(s32 *)(fp - 16)
		{lsh, asm.R9, 0, 0, 32}, {arsh, asm.R9, 0, 0, 32}, // sign-extended
		{movi, asm.R0, 0, 0, 0}, {exit, 0, 0, 0, 0},
	}, raws(insns), "got:\n%s", insns)
}
