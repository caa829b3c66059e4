package runtime_test

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/runtime"
)

var multiCalls runtime.Hash[runtime.U32, runtime.U64]

func init() { multiCalls.Declare("multi_calls", runtime.MapOptions{MaxEntries: 64}) }

// buildCounter counts calls of vfs_read and vfs_write by function, and
// the bytes asked for, reading count (slot 2 in both) and file->f_flags.
func buildCounter(kind runtime.Kind, targets ...string) *runtime.Program {
	return runtime.NewMulti(runtime.Info{Name: "count", Kind: kind, Targets: targets}, func(p *runtime.Program) {
		p.FilterTgid(42)
		multiCalls.Add(p, runtime.FuncIndex(p), runtime.Arg[uint64](p, "count", 2))
		file := runtime.ArgPtr(p, "file", 0, "file")
		multiCalls.Add(p, runtime.FuncIndex(p).Add(32), runtime.Field[uint32](file, "f_flags").U64())
	})
}

// rw is a kernel where vfs_read and vfs_write take count in slot 2 and
// vfs_odd takes it in slot 0.
func rw(t *testing.T) runtime.Target {
	t.Helper()
	u64 := &cbtf.Int{Name: "long unsigned int", Size: 8}
	i64 := &cbtf.Int{Name: "long int", Size: 8, Encoding: cbtf.Signed}
	file := &cbtf.Struct{Name: "file", Size: 16, Members: []cbtf.Member{{Name: "f_flags", Type: &cbtf.Int{Name: "unsigned int", Size: 4}, Offset: 64}}}
	pfile := &cbtf.Pointer{Target: file}
	rwProto := &cbtf.FuncProto{Return: i64, Params: []cbtf.FuncParam{{Name: "file", Type: pfile}, {Name: "buf", Type: &cbtf.Pointer{Target: &cbtf.Void{}}}, {Name: "count", Type: u64}, {Name: "pos", Type: &cbtf.Pointer{Target: i64}}}}
	odd := &cbtf.FuncProto{Return: i64, Params: []cbtf.FuncParam{{Name: "count", Type: u64}, {Name: "file", Type: pfile}}}
	b, err := cbtf.NewBuilder([]cbtf.Type{
		&cbtf.Func{Name: "vfs_read", Type: rwProto}, &cbtf.Func{Name: "vfs_write", Type: rwProto}, &cbtf.Func{Name: "vfs_odd", Type: odd},
		&cbtf.Func{Name: "migrate_disable", Type: &cbtf.FuncProto{Return: &cbtf.Void{}}},
	}, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	return runtime.Target{Spec: spec, Name: "rw"}
}

// TestMultiLink: the multi-link program reads no ctx: count through
// bpf_get_func_arg with its slot resolved for every function, file as an
// untyped pointer (bpf_probe_read_kernel), the function's position from
// the attach cookie.
func TestMultiLink(t *testing.T) {
	p := buildCounter(runtime.Fentry, "vfs_re*", "vfs_write")
	require.NoError(t, p.Err())
	assert.Equal(t, "fentry.multi/vfs_re*,vfs_write", p.Info().SectionName())
	spec, err := p.Spec(rw(t))
	require.NoError(t, err)
	assert.EqualValues(t, 59, spec.AttachType, "BPF_TRACE_FENTRY_MULTI")
	assert.Empty(t, spec.AttachTo)
	var helpers []asm.BuiltinFunc
	var slots []int64
	for i, ins := range spec.Instructions {
		if ins.OpCode.Class().IsLoad() && ins.Src == runtime.CtxReg {
			t.Errorf("instruction %d reads ctx: %v", i, ins)
		}
		if ins.IsBuiltinCall() {
			helpers = append(helpers, asm.BuiltinFunc(ins.Constant))
			if asm.BuiltinFunc(ins.Constant) == asm.FnGetFuncArg {
				mov := spec.Instructions[i-3]
				assert.Equal(t, raw{movi, asm.R2, 0, 0, mov.Constant}, raws(spec.Instructions[i-3 : i-2])[0])
				slots = append(slots, mov.Constant)
			}
		}
	}
	assert.Equal(t, []int64{2, 0}, slots, "count, then file: their slots in every function")
	assert.Contains(t, helpers, asm.FnGetAttachCookie)
	assert.Contains(t, helpers, asm.FnProbeReadKernel, "file is untyped here")

	_, err = buildCounter(runtime.Fentry, "vfs_*").Spec(rw(t))
	assert.ErrorContains(t, err, "argument count is in slot 0 of vfs_odd but in slot 2 of vfs_read, vfs_write: one program reads one slot for all its functions (leave vfs_odd out, or read the argument in a probe of its own)")

	_, err = buildCounter(runtime.Fentry, "tcp_*").Spec(rw(t))
	assert.ErrorContains(t, err, "probe count: no function of rw matches tcp_*")

	fns, notes, err := runtime.ResolveTargets(rw(t), runtime.Info{Name: "count", Kind: runtime.Fentry, Targets: []string{"vfs_read", "vfs_gone", "migrate_*"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"vfs_read"}, fns)
	assert.Equal(t, []string{"count: vfs_gone is not in the BTF of rw: skipped", "count: migrate_disable skipped: migrate_disable: in the kernel's deny list for tracing programs"}, notes)
}

// TestPerFunction: elsewhere one program per function, each an ordinary
// fentry program with direct ctx loads and its position a constant.
func TestPerFunction(t *testing.T) {
	progs, err := buildCounter(runtime.Fentry, "vfs_*").PerFunction([]string{"vfs_odd", "vfs_read"})
	require.NoError(t, err)
	require.Len(t, progs, 2)
	for i, p := range progs {
		fn := []string{"vfs_odd", "vfs_read"}[i]
		assert.Equal(t, runtime.Info{Name: "count." + fn, Kind: runtime.Fentry, Target: fn}, p.Info())
		spec, err := p.Spec(rw(t))
		require.NoError(t, err)
		assert.Equal(t, fn, spec.AttachTo)
		var loads []int16
		for _, ins := range spec.Instructions {
			if ins.OpCode.Class().IsLoad() && ins.Src == runtime.CtxReg {
				loads = append(loads, ins.Offset)
			}
			assert.False(t, ins.IsBuiltinCall() && asm.BuiltinFunc(ins.Constant) == asm.FnGetAttachCookie, "the position is a constant")
		}
		slots := map[string][]int16{"vfs_odd": {0, 8}, "vfs_read": {16, 0}}
		assert.Equal(t, slots[fn], loads, "count, then file, at their slots in %s", fn)
	}
	_, err = runtime.New(runtime.Info{Name: "one", Kind: runtime.Fentry, Target: "vfs_read"}).PerFunction([]string{"vfs_read"})
	assert.ErrorContains(t, err, "not a multi-function probe")

	p := runtime.New(runtime.Info{Name: "one", Kind: runtime.Fentry, Target: "vfs_read"})
	p.Load(asm.R1, runtime.FuncIndex(p))
	assert.ErrorContains(t, p.Err(), "FuncIndex in a probe of one function (vfs_read)")
	p = runtime.NewMulti(runtime.Info{Name: "m", Kind: runtime.FmodRet, Targets: []string{"security_*"}}, func(*runtime.Program) {})
	assert.ErrorContains(t, p.Err(), "fmod_ret probes attach to one function each")
}

func TestSymbolAddrs(t *testing.T) {
	syms := "ffffffff81000000 T _stext\nffffffff81234560 T vfs_read\nffffffff81234999 t helper\nffffffff81300000 t vfs_read\nffffffff81400000 D vfs_read\n"
	got, err := runtime.SymbolAddrs(strings.NewReader(syms), []string{"vfs_read", "vfs_write"})
	require.NoError(t, err)
	assert.Equal(t, map[string][]uint64{"vfs_read": {0xffffffff81234560, 0xffffffff81300000}}, got, "text symbols only, each place of a static name")
}
