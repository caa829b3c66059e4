package btf_test

import (
	"os"
	"path/filepath"
	"testing"

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
			base, err := k.BTF()
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

			// A module's BTF on another kernel's vmlinux does not read.
			other := filepath.Join(t.TempDir(), "loop")
			require.NoError(t, os.WriteFile(other, []byte("not BTF"), 0o644))
			_, err = fbtf.LoadModuleFile(other, base)
			assert.ErrorContains(t, err, "invalid BTF")
		})
	}
}
