package runtime_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/runtime"
)

// TestStackTraceDeclare checks the map a StackTrace declares:
// BPF_MAP_TYPE_STACK_TRACE of u32 ids to 127 u64 addresses.
func TestStackTraceDeclare(t *testing.T) {
	var s runtime.StackTrace
	s.Declare("stacks", runtime.MapOptions{})
	assert.Equal(t, &ebpf.MapSpec{Name: "stacks", Type: ebpf.StackTrace, KeySize: 4, ValueSize: 8 * 127, MaxEntries: runtime.DefaultStackEntries}, s.Spec())
	s.Declare("stacks", runtime.MapOptions{MaxEntries: 102400})
	assert.Equal(t, uint32(102400), s.Spec().MaxEntries)
}

// TestStackID proves ID calls bpf_get_stackid(ctx, &map, flags) (helper
// 27) with ctx from r6, that the program uses the map, and that Let pins
// the id for a signed comparison.
func TestStackID(t *testing.T) {
	var stacks runtime.StackTrace
	stacks.Declare("stacks", runtime.MapOptions{MaxEntries: 64})
	p := runtime.New(runtime.Info{Name: "stackid", Kind: runtime.Fentry, Target: "mutex_lock"})
	id := runtime.Let(p, stacks.ID(p, 4|runtime.StackFastCmp))
	p.If(id.Lt(0), p.Exit)
	p.Load(asm.R7, id)
	require.NoError(t, p.Err())
	insns, err := p.Instructions()
	require.NoError(t, err)
	stxdw := asm.StoreMemOp(asm.DWord)
	jslti := asm.JSLT.Op(asm.ImmSource)
	assert.Equal(t, []raw{
		{movr, asm.R6, asm.R1, 0, 0},             // r6 = ctx
		{movr, asm.R1, asm.R6, 0, 0},             // bpf_get_stackid(ctx,
		{lddw, asm.R2, asm.PseudoMapFD, 0, 0},    //   &stacks,
		{movi, asm.R3, 0, 0, 4 | 1<<9},           //   4 | BPF_F_FAST_STACK_CMP)
		{call, 0, 0, 0, int64(asm.FnGetStackid)}, //
		{stxdw, asm.RFP, asm.R0, -8, 0},          // id = r0
		{ldxdw, asm.R0, asm.RFP, -8, 0},          // if (id < 0)
		{jslti, asm.R0, 0, unresolved, 0},        //   goto exit
		{ldxdw, asm.R7, asm.RFP, -8, 0},          // r7 = id
		{movi, asm.R0, 0, 0, 0}, {exit, 0, 0, 0, 0},
	}, raws(insns), "got:\n%s", insns)
	assert.Equal(t, "exit", insns[7].Reference())
	assert.Equal(t, "stacks", insns[2].Reference())
	assert.Contains(t, p.Maps(), "stacks")
	assert.Equal(t, ebpf.StackTrace, p.Maps()["stacks"].Type)
}

// TestStackIDErrors: an undeclared map and unknown flags fail the
// program.
func TestStackIDErrors(t *testing.T) {
	var undeclared runtime.StackTrace
	p := runtime.New(runtime.Info{Name: "stackid", Kind: runtime.Fentry, Target: "mutex_lock"})
	p.Load(asm.R7, undeclared.ID(p, 0))
	assert.ErrorContains(t, p.Err(), "declared")

	var stacks runtime.StackTrace
	stacks.Declare("stacks", runtime.MapOptions{})
	p = runtime.New(runtime.Info{Name: "stackid", Kind: runtime.Fentry, Target: "mutex_lock"})
	p.Load(asm.R7, stacks.ID(p, 1<<12))
	assert.ErrorContains(t, p.Err(), "unknown flags 0x1000")
}
