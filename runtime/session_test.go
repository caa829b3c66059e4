package runtime_test

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

var sessionHist runtime.Log2Hist

func init() { sessionHist.Declare("session_hist", runtime.HistOptions{Slots: 27}) }

// buildLatency is funclatency as one fsession stub: the entry time in the
// cookie, the latency into a histogram at the exit, for one process.
func buildLatency() *runtime.Program {
	return runtime.NewSession(runtime.Info{Name: "lat", Kind: runtime.Fsession, Target: "vfs_read"}, func(p *runtime.Program) {
		p.FilterTgid(42)
		runtime.AtEntry(p, func() { runtime.SetCookie(p, runtime.KtimeNs()) })
		runtime.AtExit(p, func() {
			sessionHist.Record(p, runtime.KtimeNs().SubV(runtime.Cookie[uint64](p)))
		})
	})
}

var kfunc = asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call)

// TestSessionNative checks the native program's parts: each starts with
// `r1 = ctx; call bpf_session_is_return`, the entry part jumps over itself
// at the return and the exit part at the call; the cookie is stored
// through, and read from, bpf_session_cookie(ctx).
func TestSessionNative(t *testing.T) {
	p := buildLatency()
	require.NoError(t, p.Err())
	insns, err := p.Instructions()
	require.NoError(t, err)
	assert.Equal(t, "fsession/vfs_read", p.Info().SectionName())
	assert.EqualValues(t, 58, p.Info().Kind.AttachType(), "BPF_TRACE_FSESSION")
	assert.Equal(t, []string{"kfunc bpf_session_is_return", "kfunc bpf_session_cookie", "kfunc bpf_session_is_return", "kfunc bpf_session_cookie"},
		stripIndex(runtime.Relocations(insns)), "is_return and a cookie store at the call, is_return and a cookie load at the return")
	var calls []raw
	for i, ins := range insns {
		if ins.IsKfuncCall() {
			assert.Equal(t, raw{movr, asm.R1, asm.R6, 0, 0}, raws(insns[i-1 : i])[0], "ctx in r1")
			calls = append(calls, raws(insns[i:i+2])...)
		}
	}
	require.Len(t, calls, 8)
	assert.Equal(t, raw{kfunc, 0, asm.PseudoKfuncCall, 0, -1}, calls[0], "a kfunc call, its id resolved at load")
	assert.Equal(t, raw{jnei, asm.R0, 0, unresolved, 0}, calls[1], "the entry part skips itself at the return")
	assert.Equal(t, raw{asm.StoreMemOp(asm.DWord), asm.RFP, asm.R0, -8, 0}, calls[3], "the cookie's address waits on the stack for the entry time")
	assert.Equal(t, raw{asm.JEq.Op(asm.ImmSource), asm.R0, 0, unresolved, 0}, calls[5], "the exit part skips itself at the call")
	assert.Equal(t, raw{ldxdw, asm.R0, asm.R0, 0, 0}, calls[7], "the cookie read through its address")
}

// TestSessionHalves checks the pair: an fentry program with the entry part
// that puts the cookie in a map under pid_tgid, and an fexit program that
// takes it out before anything else.
func TestSessionHalves(t *testing.T) {
	entry, exit, err := buildLatency().Halves()
	require.NoError(t, err)
	require.NoError(t, entry.Err())
	require.NoError(t, exit.Err())
	assert.Equal(t, runtime.Info{Name: "lat", Kind: runtime.Fentry, Target: "vfs_read"}, entry.Info())
	assert.Equal(t, runtime.Info{Name: "lat.exit", Kind: runtime.Fexit, Target: "vfs_read"}, exit.Info())
	for _, h := range []*runtime.Program{entry, exit} {
		assert.Contains(t, h.Maps(), "lat.cookie")
		assert.EqualValues(t, runtime.SessionMaxCalls, h.Maps()["lat.cookie"].MaxEntries)
		insns, err := h.Instructions()
		require.NoError(t, err)
		for _, ins := range insns {
			assert.False(t, ins.IsKfuncCall(), "%s calls no kfunc", h.Info().Name)
		}
	}
	insns, err := exit.Instructions()
	require.NoError(t, err)
	assert.Equal(t, raw{stdw, asm.RFP, 0, -8, 0}, raws(insns[:1])[0], "the cookie is 0 unless the map has one")
	var helpers []asm.BuiltinFunc
	for _, ins := range insns {
		if ins.IsBuiltinCall() {
			helpers = append(helpers, asm.BuiltinFunc(ins.Constant))
		}
	}
	assert.Equal(t, []asm.BuiltinFunc{asm.FnGetCurrentPidTgid, asm.FnMapLookupElem, asm.FnMapDeleteElem, asm.FnGetCurrentPidTgid, asm.FnKtimeGetNs, asm.FnMapLookupElem}, helpers,
		"take the cookie (lookup, delete), then the filter, the time and the histogram")

	// A stub that never uses the cookie needs no map.
	plain := runtime.NewSession(runtime.Info{Name: "plain", Kind: runtime.Fsession, Target: "vfs_read"}, func(p *runtime.Program) {
		runtime.AtExit(p, func() { sessionHist.Record(p, runtime.Ret[int64](p, 4).U64()) })
	})
	entry, exit, err = plain.Halves()
	require.NoError(t, err)
	assert.NotContains(t, exit.Maps(), "plain.cookie")
	insns, err = entry.Instructions()
	require.NoError(t, err)
	assert.Equal(t, raws(runtime.Return(0)), raws(insns), "an entry half with no entry part does nothing")
}

// TestSessionRules: what belongs to one part is refused in the other, and
// outside both.
func TestSessionRules(t *testing.T) {
	info := runtime.Info{Name: "s", Kind: runtime.Fsession, Target: "vfs_read"}
	for name, tc := range map[string]struct {
		stub func(p *runtime.Program)
		err  string
	}{
		"cookie set at exit": {func(p *runtime.Program) {
			runtime.AtExit(p, func() { runtime.SetCookie(p, runtime.KtimeNs()) })
		}, "SetCookie outside AtEntry"},
		"cookie read at entry": {func(p *runtime.Program) {
			runtime.AtEntry(p, func() { p.Load(asm.R1, runtime.Cookie[uint32](p)) })
		}, "Cookie outside AtExit"},
		"ret at entry": {func(p *runtime.Program) {
			runtime.AtEntry(p, func() { p.Load(asm.R1, runtime.Ret[int64](p, 4)) })
		}, "the return value outside AtExit"},
		"ret outside parts": {func(p *runtime.Program) {
			p.Load(asm.R1, runtime.Ret[int64](p, 4))
		}, "the return value outside AtExit"},
		"nested": {func(p *runtime.Program) {
			runtime.AtEntry(p, func() { runtime.AtExit(p, func() {}) })
		}, "AtExit inside AtEntry"},
		"nonzero return": {func(p *runtime.Program) {
			runtime.AtExit(p, func() { p.Return(-1) })
		}, "fsession programs must return 0"},
	} {
		t.Run(name, func(t *testing.T) {
			p := runtime.NewSession(info, tc.stub)
			assert.ErrorContains(t, p.Err(), tc.err)
			if name == "nonzero return" {
				return
			}
			entry, exit, err := p.Halves()
			require.NoError(t, err)
			assert.ErrorContains(t, errorsOf(entry, exit), tc.err, "the pair refuses it too")
		})
	}
	fentry := runtime.New(runtime.Info{Name: "f", Kind: runtime.Fentry, Target: "vfs_read"})
	runtime.AtEntry(fentry, func() {})
	assert.ErrorContains(t, fentry.Err(), "AtEntry in a fentry program: only fsession programs have entry and exit parts")
	_, _, err := fentry.Halves()
	assert.ErrorContains(t, err, "a fentry program has no halves")
}

func errorsOf(ps ...*runtime.Program) error {
	for _, p := range ps {
		if p.Err() != nil {
			return p.Err()
		}
	}
	return nil
}

// TestSessionRelocates resolves the session kfuncs in each test kernel's
// BTF: 7.x has them with ctx; 6.12 has them from kprobe sessions without
// it, and 6.1 not at all, so the native program does not build there (the
// pair does).
func TestSessionRelocates(t *testing.T) {
	kernels := vmtest.KernelBTFs(t)
	p := buildLatency()
	for name, spec := range kernels {
		target := runtime.Target{Spec: spec, Name: name}
		s, err := p.Spec(target)
		if fbtf.Fsession(spec) != nil {
			assert.ErrorContains(t, err, "kfunc bpf_session_is_return", name)
		} else {
			require.NoError(t, err, name)
			id, err := fbtf.Kfunc(spec, fbtf.KfuncSessionIsReturn, 1)
			require.NoError(t, err)
			assert.Equal(t, int64(id), s.Instructions[5].Constant, "is_return's id on %s", name)
		}
		entry, exit, err := p.Halves()
		require.NoError(t, err)
		for _, h := range []*runtime.Program{entry, exit} {
			_, err := h.Spec(target)
			assert.NoError(t, err, "%s on %s", h.Info().Name, name)
		}
	}
	assert.NoError(t, fbtf.Fsession(kernels["7.x"]))
	assert.ErrorContains(t, fbtf.Fsession(kernels["6.12"]), "BPF_TRACE_FSESSION (Linux 7.0) not in this kernel")
	_, err := fbtf.Kfunc(kernels["6.12"], fbtf.KfuncSessionIsReturn, 1)
	assert.ErrorContains(t, err, "takes 0 parameter(s) here, not 1")
}
