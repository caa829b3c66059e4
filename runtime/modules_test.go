package runtime_test

import (
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/runtime"
)

// statusProgram reads lo->lo_state, a member of the loop module's own
// struct, and lo->lo_disk->first_minor, through loop_get_status's first
// argument.
func statusProgram(module, target string) *runtime.Program {
	p := runtime.New(runtime.Info{Name: "status", Kind: runtime.Fexit, Module: module, Target: target})
	lo := runtime.ArgPtr(p, "lo", 0, "loop_device")
	p.Load(asm.R1, runtime.Field[int32](lo, "lo_state"))
	p.Load(asm.R2, runtime.Field[int32](lo.Deref("lo_disk", "gendisk"), "first_minor"))
	p.Load(asm.R3, runtime.Ret[int32](p, 2))
	return p
}

// TestModuleTarget relocates programs on a kernel module's function
// against a snapshot that keeps the module's BTF: the module's own types
// resolve in its BTF, vmlinux's in vmlinux's; the section names the
// module as libbpf does; a module the target lacks is an error saying to
// load it.
func TestModuleTarget(t *testing.T) {
	spec, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", "modules-min.btf"))
	require.NoError(t, err)
	target := runtime.Target{Spec: spec, Name: "6.12 snapshot"}

	for _, module := range []string{"loop", ""} {
		s, err := statusProgram(module, "loop_get_status").Spec(target)
		require.NoError(t, err, "module %q", module)
		reloc := relocated(s.Instructions)
		assert.Equal(t, int16(120), reloc["loop_device.lo_state"][0][0].Offset)
		assert.Equal(t, asm.LoadMemOp(asm.Word), reloc["gendisk.first_minor"][0][0].OpCode)
		assert.Equal(t, "loop_get_status", s.AttachTo)
	}
	assert.Equal(t, "fexit/loop:loop_get_status", statusProgram("loop", "loop_get_status").Info().SectionName())
	assert.Equal(t, "fexit/loop_get_status", statusProgram("", "loop_get_status").Info().SectionName())

	_, err = statusProgram("dummy", "loop_get_status").Spec(target)
	assert.ErrorContains(t, err, "module dummy: function loop_get_status: not found in BTF; module loop has it: write loop:loop_get_status")
	_, err = statusProgram("xfs", "loop_get_status").Spec(target)
	assert.ErrorContains(t, err, "program status: on 6.12 snapshot: module xfs: no BTF for this module (have dummy, loop): load the module first (modprobe xfs), or build it in")

	vmlinuxOnly, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", "vmlinux-min.btf"))
	require.NoError(t, err)
	_, err = statusProgram("loop", "loop_get_status").Spec(runtime.Target{Spec: vmlinuxOnly, Name: "min"})
	assert.ErrorContains(t, err, "module loop: no BTF for this module: load the module first (modprobe loop)")
}

// TestRetargetModule: Retarget takes MODULE:FUNC, and the program is
// then resolved in that module's BTF (here, which lacks the function,
// before any kernel is asked).
func TestRetargetModule(t *testing.T) {
	spec, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", "modules-min.btf"))
	require.NoError(t, err)
	p := runtime.New(runtime.Info{Name: "lat", Kind: runtime.Fentry, Target: "vfs_read"})
	_, err = runtime.Load(runtime.Options{Target: runtime.Target{Spec: spec, Name: "snapshot"}, NoAttach: true, Retarget: map[string]string{"lat": "dummy:loop_get_status"}}, p)
	assert.ErrorContains(t, err, "program lat: on snapshot: module dummy: function loop_get_status: not found in BTF; module loop has it")
}
