package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/testmod"
	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// modulesBTF is a snapshot of Debian's 6.12 kernel that keeps functions of
// its loop and dummy modules (see btf/doc.go).
var modulesBTF = filepath.Join("..", "..", "testdata", "btf", "modules-min.btf")

func TestModuleFlag(t *testing.T) {
	m := moduleFiles{}
	require.NoError(t, m.Set("loop=/tmp/x.btf"))
	require.NoError(t, m.Set("/lib/modules/6.12/kernel/drivers/net/dummy.ko"))
	require.NoError(t, m.Set("/sys/kernel/btf/nf_nat"))
	assert.Equal(t, moduleFiles{"loop": "/tmp/x.btf", "dummy": "/lib/modules/6.12/kernel/drivers/net/dummy.ko", "nf_nat": "/sys/kernel/btf/nf_nat"}, m)
	assert.ErrorContains(t, m.Set("loop=/other"), "module loop given twice")
	assert.ErrorContains(t, m.Set("/tmp/loop-6.12.ko"), "write NAME=FILE")
	assert.ErrorContains(t, m.Set("lo op=x"), "want NAME=FILE")
	assert.ErrorContains(t, m.Set("xfs="), "no file")
}

const moduleStub = `package probes

//fentry:loop:loop_control_ioctl args=file,cmd
func onControl(p *OnControl) {
	_ = p.File.FFlags()
	_ = p.Cmd
}

//fexit:loop_get_status args=lo ret
func onStatus(p *OnStatus) {
	_ = p.Lo.LoState()
	_ = p.Ret
}
`

// TestGenerateModuleProbe generates probes on the loop module's functions
// from a snapshot that keeps its BTF, and fails, at the module, with a
// hint, from one that does not.
func TestGenerateModuleProbe(t *testing.T) {
	dir := testmod.Write(t, map[string][]byte{"probes.go": []byte(moduleStub)})
	modules, vmlinuxOnly := abs(t, modulesBTF), abs(t, snapshotBTF)
	stdout, stderr, err := runIn(t, dir, "-btf", modules, "-debug-model")
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, `"module": "loop"`)
	_, stderr, err = runIn(t, dir, "-btf", modules)
	require.NoError(t, err, stderr)
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = dir
	out, err := vet.CombinedOutput()
	require.NoError(t, err, string(out))

	require.NoError(t, os.Remove(filepath.Join(dir, "fentrygen_gen.go")))
	_, stderr, err = runIn(t, dir, "-btf", vmlinuxOnly)
	require.ErrorIs(t, err, errReported)
	assert.Contains(t, stderr, "fentrygen: probes.go:3:10: fentry: module loop: no BTF for this module; load it here (modprobe loop) for /sys/kernel/btf/loop, pass -btf-module loop=FILE")
	assert.Contains(t, stderr, "fentrygen: probes.go:9:9: fexit: function loop_get_status: not found in BTF")
}

func TestDescribeModule(t *testing.T) {
	out, _, err := runIn(t, "", "describe", "-btf", modulesBTF, "loop:loop_control_ioctl")
	require.NoError(t, err)
	assert.Contains(t, out, "long int loop_control_ioctl(struct file *file, unsigned int cmd, long unsigned int parm)")
	assert.Contains(t, out, "module:   loop (annotate //fentry:loop:loop_control_ioctl;")
	out, _, err = runIn(t, "", "describe", "-btf", modulesBTF, "dummy_xmit")
	require.NoError(t, err)
	assert.Contains(t, out, "module:   dummy", "a bare name vmlinux lacks, found in a module")
	out, _, err = runIn(t, "", "describe", "-btf", modulesBTF, "vfs_read")
	require.NoError(t, err)
	assert.NotContains(t, out, "module:")

	_, _, err = runIn(t, "", "describe", "-btf", modulesBTF, "lop:lo_ioctl")
	assert.ErrorContains(t, err, "module lop: no BTF for this module (did you mean loop?) (load it here, modprobe lop, or give its BTF: -btf-module lop=FILE)")
	assert.False(t, errors.As(err, new(usageError)), "a failure, exit 1")
	_, _, err = runIn(t, "", "describe", "-btf", modulesBTF, "lo-op:lo_ioctl")
	assert.True(t, errors.As(err, new(usageError)), "not a module name: exit 2")
}

// TestModuleBTFFiles reads a test kernel's BTF as the guest's
// /sys/kernel/btf lays it out, the modules beside vmlinux, or given by
// -btf-module; pins a snapshot that keeps a module's types; and checks a
// probe on them against both, and against a kernel without the module.
func TestModuleBTFFiles(t *testing.T) {
	k := vmtest.Kernels(t)[1]
	dir := t.TempDir()
	raw, err := k.RawBTF()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinux"), raw, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinux-alone.btf"), raw, 0o644))
	ko, err := k.ModuleFile("loop")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "loop"), ko, 0o644))

	out, _, err := runIn(t, "", "describe", "-btf", filepath.Join(dir, "vmlinux"), "loop_get_status")
	require.NoError(t, err)
	assert.Contains(t, out, "module:   loop", "the module beside vmlinux")
	out, _, err = runIn(t, "", "describe", "-btf", filepath.Join(dir, "vmlinux-alone.btf"), "-btf-module", "loop="+filepath.Join(dir, "loop"), "loop:lo_ioctl")
	require.NoError(t, err)
	assert.Contains(t, out, "module:   loop")
	_, _, err = runIn(t, "", "describe", "-btf", filepath.Join(dir, "vmlinux-alone.btf"), "loop:lo_ioctl")
	assert.ErrorContains(t, err, "module loop: no BTF for this module")

	snap := filepath.Join(t.TempDir(), "fentrygen.btf")
	stdout, _, err := runIn(t, "", "snapshot", "-btf", filepath.Join(dir, "vmlinux"), "-o", snap, "loop:loop_control_ioctl", "loop_get_status")
	require.NoError(t, err)
	assert.Contains(t, stdout, "wrote "+snap)
	spec, err := fbtf.LoadFile(snap)
	require.NoError(t, err)
	assert.Equal(t, []string{"loop"}, fbtf.NewModules(spec, nil).Names())

	pkg := testmod.Write(t, map[string][]byte{"probes.go": []byte(moduleStub)})
	require.NoError(t, os.Rename(snap, filepath.Join(pkg, "fentrygen.btf")))
	stdout, _, err = runIn(t, pkg, "check", "-btf", filepath.Join(dir, "vmlinux"), "-btf", filepath.Join(dir, "vmlinux-alone.btf"))
	require.ErrorIs(t, err, errReported)
	assert.Regexp(t, `onControl \(fentry loop:loop_control_ioctl\)\s+ok\s+(ok\*?\s+)?ok\s+FAIL`, stdout)
	assert.Regexp(t, `onStatus \(fexit loop:loop_get_status\)\s+ok\s+(ok\*?\s+)?ok\s+FAIL`, stdout)
	assert.Contains(t, stdout, "onControl on vmlinux-alone.btf: module loop: no BTF for this module: not loaded: load it before the probe (modprobe loop)")
}
