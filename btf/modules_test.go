package btf_test

import (
	"os"
	"path/filepath"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// TestModulesRealKernels looks up the functions and types of the loop
// module in the BTF of its .ko files, split on each test kernel's vmlinux
// BTF: what /sys/kernel/btf/loop holds in the guest.
func TestModulesRealKernels(t *testing.T) {
	for name, mods := range vmtest.KernelModules(t) {
		t.Run(name, func(t *testing.T) {
			v := mods.Validate("loop", "loop_control_ioctl", nil)
			require.NoError(t, v.Err)
			assert.Equal(t, "loop", v.Module)
			assert.Equal(t, []string{"file", "cmd", "parm"}, v.Func.ArgNames())
			lo, err := fbtf.ResolveMember(v.Scope, "loop_device", "lo_number")
			require.NoError(t, err, "a type of the module's own")
			assert.Equal(t, uint32(0), lo.Last().Offset)
			_, err = fbtf.ResolveMember(v.Scope, "file", "f_flags")
			require.NoError(t, err, "a vmlinux type, from the module's scope")
			_, err = fbtf.LookupComposite(mods.Vmlinux(), "loop_device")
			assert.ErrorIs(t, err, fbtf.ErrNotFound, "vmlinux has no loop_device")

			v = mods.Validate("loop", "vfs_read", nil)
			assert.ErrorIs(t, v.Err, fbtf.ErrNotFound)
			assert.ErrorContains(t, v.Err, "vmlinux has vfs_read: write it without loop:")
			v = mods.Validate("loop", "loop_control_ioctll", nil)
			assert.ErrorContains(t, v.Err, "did you mean loop_control_ioctl?")
			v = mods.Validate("lop", "loop_control_ioctl", nil)
			assert.ErrorIs(t, v.Err, fbtf.ErrNoModule)
			assert.ErrorContains(t, v.Err, "did you mean loop")
		})
	}
}

// TestModuleDir reads module BTF from a folder laid out as
// /sys/kernel/btf, here with the .ko files of two modules of each test
// kernel: a bare function name that vmlinux lacks is found in the module
// that defines it.
func TestModuleDir(t *testing.T) {
	for _, k := range vmtest.Kernels(t) {
		t.Run(k.Name, func(t *testing.T) {
			base, err := vmtest.KernelBTF(k)
			require.NoError(t, err)
			dir := t.TempDir()
			for _, name := range []string{"dummy", "loop"} {
				ko, err := k.ModuleFile(name)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), ko, 0o644))
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinux"), nil, 0o644))
			mods := fbtf.NewModules(base, fbtf.ModuleDir(dir))
			assert.Equal(t, []string{"dummy", "loop"}, mods.Names(), "vmlinux is not a module")

			v := mods.Validate("", "loop_get_status", nil)
			require.NoError(t, v.Err)
			assert.Equal(t, "loop", v.Module)
			assert.Equal(t, []string{"lo", "info"}, v.Func.ArgNames())
			v = mods.Validate("", "dummy_xmit", nil)
			require.NoError(t, v.Err)
			assert.Equal(t, "dummy", v.Module)
			v = mods.Validate("", "vfs_read", nil)
			require.NoError(t, v.Err)
			assert.Equal(t, "", v.Module, "vmlinux first")
			v = mods.Validate("", "loop_get_statuss", nil)
			assert.ErrorIs(t, v.Err, fbtf.ErrNotFound)
			assert.ErrorContains(t, v.Err, "nor in the BTF of modules dummy, loop")
		})
	}
}

// TestModuleOnOtherKernel: a module's BTF split on another kernel's vmlinux
// BTF does not read, and says why it may not.
func TestModuleOnOtherKernel(t *testing.T) {
	kernels := vmtest.Kernels(t)
	ko, err := kernels[0].ModuleFile("loop")
	require.NoError(t, err)
	base, err := vmtest.KernelBTF(kernels[1])
	require.NoError(t, err)
	_, err = fbtf.LoadModuleBytes("loop.ko", ko, base)
	assert.ErrorContains(t, err, "loop.ko: invalid BTF, or split BTF on another vmlinux's")
	_, err = fbtf.LoadModuleBytes("loop.ko.xz", []byte("\xfd7zXZ\x00rest"), base)
	assert.ErrorContains(t, err, "compressed with xz: decompress it first")
}

// modulesSnapshot is the committed snapshot of Debian's 6.12 kernel that
// keeps functions of its loop and dummy modules.
func modulesSnapshot(t *testing.T) *cbtf.Spec {
	t.Helper()
	spec, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", "modules-min.btf"))
	require.NoError(t, err)
	return spec
}

// TestSnapshotModules looks names up in a snapshot that keeps two modules'
// types: vmlinux's own view has none of them, each module's has its own,
// a module's scope has its own then vmlinux's; a snapshot of it keeps
// what it was asked for, with the same layout.
func TestSnapshotModules(t *testing.T) {
	spec := modulesSnapshot(t)
	mods := fbtf.NewModules(spec, nil)
	assert.Equal(t, []string{"dummy", "loop"}, mods.Names())

	_, err := fbtf.ResolveFunc(mods.Vmlinux(), "loop_get_status")
	assert.ErrorIs(t, err, fbtf.ErrNotFound, "vmlinux's view has no module function")
	_, err = fbtf.ResolveFunc(mods.Vmlinux(), "vfs_read")
	assert.NoError(t, err)
	_, err = fbtf.LookupComposite(mods.Vmlinux(), "loop_device")
	assert.ErrorIs(t, err, fbtf.ErrNotFound)
	loop, err := mods.Module("loop")
	require.NoError(t, err)
	_, err = fbtf.ResolveFunc(loop, "dummy_xmit")
	assert.ErrorIs(t, err, fbtf.ErrNotFound, "loop's view has no dummy function")
	_, err = fbtf.ResolveFunc(loop, "vfs_read")
	assert.ErrorIs(t, err, fbtf.ErrNotFound, "a module's own types only")
	scope, err := mods.Scope("loop")
	require.NoError(t, err)
	state, err := fbtf.ResolveMember(scope, "loop_device", "lo_state")
	require.NoError(t, err)
	assert.Equal(t, uint32(120), state.Last().Offset)
	flags, err := fbtf.ResolveMember(scope, "file", "f_flags")
	require.NoError(t, err)
	assert.Equal(t, uint32(48), flags.Last().Offset)

	v := mods.Validate("", "dummy_xmit", nil)
	require.NoError(t, v.Err)
	assert.Equal(t, "dummy", v.Module)
	v = mods.Validate("loop", "loop_control_ioctl", nil)
	require.NoError(t, v.Err)
	assert.Equal(t, "loop", v.Module)

	blob, err := fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: []string{"loop:loop_get_status", "dummy_xmit", "vfs_read"}, Types: []string{"loop:loop_device"}, Modules: mods})
	require.NoError(t, err)
	back, err := fbtf.LoadBytes("again", blob)
	require.NoError(t, err)
	again := fbtf.NewModules(back, nil)
	assert.Equal(t, []string{"dummy", "loop"}, again.Names())
	v = again.Validate("", "loop_get_status", nil)
	require.NoError(t, v.Err)
	assert.Equal(t, "loop", v.Module)
	state2, err := fbtf.ResolveMember(v.Scope, "loop_device", "lo_state")
	require.NoError(t, err)
	assert.Equal(t, state.Last().Offset, state2.Last().Offset)
	v = again.Validate("", "vfs_read", nil)
	require.NoError(t, v.Err)
	assert.Equal(t, "", v.Module)

	_, err = fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: []string{"nosuch:f"}})
	assert.ErrorIs(t, err, fbtf.ErrNoModule)
	_, err = fbtf.Snapshot(spec, fbtf.SnapshotOptions{Types: []string{"loop:file"}})
	assert.NoError(t, err, "a module's scope has vmlinux's types too")
	_, err = fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: []string{"vfs_read"}, Modules: fbtf.NewModules(back, nil)})
	assert.ErrorContains(t, err, "builds on another spec")
}

// TestModulesAmbiguous builds BTF by hand where a function's name is
// taken twice: by vmlinux and module m (the loader would take vmlinux's),
// and by modules m and n (a bare name cannot tell which).
func TestModulesAmbiguous(t *testing.T) {
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	proto := &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "x", Type: i32}}}
	fn := func(name, module string) *cbtf.Func {
		f := &cbtf.Func{Name: name, Type: proto, Linkage: cbtf.StaticFunc}
		if module != "" {
			f.Tags = []string{"fentrygen.module=" + module}
		}
		return f
	}
	marker := &cbtf.Struct{Name: "__fentrygen_modules", Tags: []string{"m", "n"}}
	b, err := cbtf.NewBuilder([]cbtf.Type{fn("f", ""), fn("f", "m"), fn("g", "m"), fn("g", "n"), fn("h", "n"), marker}, nil)
	require.NoError(t, err)
	raw, err := b.Marshal(nil, nil)
	require.NoError(t, err)
	spec, err := fbtf.LoadBytes("synthetic", raw)
	require.NoError(t, err)
	mods := fbtf.NewModules(spec, nil)
	assert.Equal(t, []string{"m", "n"}, mods.Names())

	v := mods.Validate("m", "f", nil)
	assert.ErrorIs(t, v.Err, fbtf.ErrAmbiguous)
	assert.ErrorContains(t, v.Err, "vmlinux defines one too")
	v = mods.Validate("", "f", nil)
	require.NoError(t, v.Err, "a bare name is vmlinux's first")
	assert.Equal(t, "", v.Module)
	v = mods.Validate("", "g", nil)
	assert.ErrorIs(t, v.Err, fbtf.ErrAmbiguous)
	assert.ErrorContains(t, v.Err, "modules m, n each define one")
	v = mods.Validate("n", "g", nil)
	require.NoError(t, v.Err)
	assert.Equal(t, "n", v.Module)
	v = mods.Validate("m", "h", nil)
	assert.ErrorContains(t, v.Err, "module n has it: write n:h")
}
