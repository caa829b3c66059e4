package runtime

import (
	"errors"
	"fmt"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestRefusalMessage: a kernel that refuses tracing programs by policy
// (EPERM) is said to, without cilium/ebpf's guess about RLIMIT_MEMLOCK, and
// the error still matches unix.EPERM.
func TestRefusalMessage(t *testing.T) {
	cilium := fmt.Errorf("program onConnect: load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM)
	infos := map[string]Info{"onConnect": {Name: "onConnect", Kind: Fentry, Target: "tcp_v4_connect"}}
	err := collectionError(infos, Target{Name: "Linux 6.18"}, cilium, 20)
	assert.True(t, errors.Is(err, unix.EPERM))
	assert.Equal(t, "load program onConnect (fentry/tcp_v4_connect) on Linux 6.18: the kernel refused it: operation not permitted (tracing programs need root, or CAP_BPF with CAP_PERFMON, and some hosts forbid them by policy)", err.Error())
	assert.NotContains(t, err.Error(), "MEMLOCK")
}

// TestRetargetMovesSlots: a program retargeted to another function reads
// that function's argument and return slots, found by name there.
func TestRetargetMovesSlots(t *testing.T) {
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	i64 := &cbtf.Int{Name: "long", Size: 8, Encoding: cbtf.Signed}
	two := &cbtf.Func{Name: "two", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "a", Type: i32}, {Name: "n", Type: i32}}}}
	three := &cbtf.Func{Name: "three", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "x", Type: i64}, {Name: "y", Type: i64}, {Name: "n", Type: i32}}}}
	b, err := cbtf.NewBuilder([]cbtf.Type{two, three}, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	target := Target{Spec: spec, Name: "synthetic"}

	p := New(Info{Name: "onTwo", Kind: Fexit, Target: "two"})
	ret := Let(p, Ret[int32](p, 2))
	n := Let(p, Arg[int32](p, "n", 1))
	p.If(ret.EqV(n), func() {})
	require.NoError(t, p.Err())
	offsets := func(q *Program) []int16 {
		ps, err := q.Spec(target)
		require.NoError(t, err)
		var out []int16
		for _, ins := range ps.Instructions {
			if ins.OpCode.Class().IsLoad() && ins.Src == CtxReg {
				out = append(out, ins.Offset)
			}
		}
		return out
	}
	assert.Equal(t, []int16{16, 8}, offsets(p), "two: ret after 2 slots, n in slot 1")
	moved := p.retarget("three")
	assert.Equal(t, []int16{24, 16}, offsets(moved), "three: ret after 3 slots, n in slot 2")
	assert.Equal(t, []int16{16, 8}, offsets(p), "the original is untouched")
	assert.Equal(t, []int16{24, 16}, offsets(moved.retarget("three")), "retargeting twice")
}
