package btf_test

import (
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// synthetic builds a spec of types.
func synthetic(t *testing.T, types ...cbtf.Type) *cbtf.Spec {
	t.Helper()
	b, err := cbtf.NewBuilder(types, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	return spec
}

func TestFsessionFeature(t *testing.T) {
	boolT := &cbtf.Int{Name: "_Bool", Size: 1, Encoding: cbtf.Bool}
	u64 := &cbtf.Int{Name: "long long unsigned int", Size: 8}
	ctx := []cbtf.FuncParam{{Name: "ctx", Type: &cbtf.Pointer{Target: &cbtf.Void{}}}}
	attach := func(values ...string) *cbtf.Enum {
		e := &cbtf.Enum{Name: "bpf_attach_type", Size: 4}
		for i, v := range values {
			e.Values = append(e.Values, cbtf.EnumValue{Name: v, Value: uint64(56 + i)})
		}
		return e
	}
	isReturn := func(params []cbtf.FuncParam) *cbtf.Func {
		return &cbtf.Func{Name: fbtf.KfuncSessionIsReturn, Type: &cbtf.FuncProto{Return: boolT, Params: params}, Linkage: cbtf.StaticFunc}
	}
	cookie := &cbtf.Func{Name: fbtf.KfuncSessionCookie, Type: &cbtf.FuncProto{Return: &cbtf.Pointer{Target: u64}, Params: ctx}, Linkage: cbtf.StaticFunc}

	// 7.x: the attach type, both kfuncs with ctx.
	spec := synthetic(t, attach("BPF_TRACE_KPROBE_SESSION", "BPF_TRACE_UPROBE_SESSION", "BPF_TRACE_FSESSION"), isReturn(ctx), cookie)
	assert.NoError(t, fbtf.Fsession(spec))
	id, err := fbtf.Kfunc(spec, fbtf.KfuncSessionIsReturn, 1)
	require.NoError(t, err)
	assert.NotZero(t, id)

	// 6.12: kprobe sessions' kfuncs, without ctx, and no fsession.
	spec = synthetic(t, attach("BPF_TRACE_KPROBE_SESSION"), isReturn(nil))
	assert.ErrorIs(t, fbtf.Fsession(spec), fbtf.ErrNoFeature)
	assert.EqualError(t, fbtf.Fsession(spec), "BPF_TRACE_FSESSION (Linux 7.0) not in this kernel")
	_, err = fbtf.Kfunc(spec, fbtf.KfuncSessionIsReturn, 1)
	assert.EqualError(t, err, "kfunc bpf_session_is_return takes 0 parameter(s) here, not 1 (the session kfuncs took no ctx before Linux 7.0): not in this kernel")

	// The attach type without the kfuncs (a stripped BTF).
	spec = synthetic(t, attach("BPF_TRACE_FSESSION"))
	assert.EqualError(t, fbtf.Fsession(spec), "kfunc bpf_session_is_return not in this kernel")
}

func TestNoReturn(t *testing.T) {
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	spec := synthetic(t, &cbtf.Func{Name: "do_exit", Type: &cbtf.FuncProto{Return: &cbtf.Void{}, Params: []cbtf.FuncParam{{Name: "code", Type: i32}}}})
	v := fbtf.Validate(spec, "do_exit", nil)
	assert.True(t, v.Traceable())
	assert.NoError(t, v.Fentry)
	assert.ErrorIs(t, v.Fexit, fbtf.ErrNoReturn)
	assert.EqualError(t, v.Fexit, "do_exit: never returns (the kernel's noreturn deny list): only fentry can attach")
	assert.ErrorIs(t, v.FmodRet, fbtf.ErrNoReturn)
}
