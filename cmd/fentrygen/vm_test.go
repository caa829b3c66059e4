package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/internal/testmod"
	"github.com/fentrygen/fentrygen/internal/vmboot"
)

// kernTest is a user's test package: it says which kernel it runs on,
// finds the kernel's BTF and a file beside it, and loads, runs and closes
// a real fentry program (hand-built with the runtime) that counts this
// process's lseek calls on a tmpfs file, and one on the loop module's
// loop_control_ioctl (with -modules loop) that counts its ioctls.
const kernTest = `package kern

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/runtime"
)

var hits runtime.Global[runtime.U64]

func init() { hits.Declare("hits", runtime.MapOptions{}) }

func TestKernel(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	t.Logf("uname -r: %s", strings.TrimRight(string(u.Release[:]), "\x00"))
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Fatalf("no kernel BTF: %v", err)
	}
	data, err := os.ReadFile("testdata/hello.txt")
	if err != nil {
		t.Fatalf("a file of the package's folder: %v", err)
	}
	t.Logf("testdata/hello.txt: %s", strings.TrimSpace(string(data)))
}

func TestProbe(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "seeks", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
	p.FilterTgid(uint32(os.Getpid()))
	hits.Add(p, runtime.Uint32(0), runtime.Uint64(1))
	objs, err := runtime.LoadPackage(runtime.Options{}, []*runtime.Program{p}, &hits)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer objs.Close()
	f, err := os.CreateTemp("", "seek")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	for i := range 3 {
		if _, err := f.Seek(int64(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	m, err := runtime.OpenMap[uint32, uint64](objs, "hits")
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := m.Lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("shmem_file_llseek seen %d times, want 3", n)
	}
	t.Logf("fentry on shmem_file_llseek counted %d calls", n)
}

func TestModule(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/loop"); err != nil {
		t.Fatalf("loop is not loaded: %v", err)
	}
	p := runtime.New(runtime.Info{Name: "ctl", Kind: runtime.Fentry, Module: "loop", Target: "loop_control_ioctl"})
	p.FilterTgid(uint32(os.Getpid()))
	hits.Add(p, runtime.Uint32(0), runtime.Uint64(1))
	objs, err := runtime.LoadPackage(runtime.Options{}, []*runtime.Program{p}, &hits)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer objs.Close()
	f, err := os.Open("/dev/loop-control")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 2 {
		if _, err := unix.IoctlRetInt(int(f.Fd()), unix.LOOP_CTL_GET_FREE); err != nil {
			t.Fatal(err)
		}
	}
	m, err := runtime.OpenMap[uint32, uint64](objs, "hits")
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := m.Lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("loop_control_ioctl seen %d times, want 2", n)
	}
	t.Logf("fentry on loop:loop_control_ioctl counted %d calls", n)
}

func TestFails(t *testing.T) {
	t.Fatal("this test fails on purpose")
}
`

// TestVMRunnerEndToEnd is what a user does: a module of its own, outside
// this checkout, whose tests go test runs in each kernel through
// -exec 'fentrygen vm' (the built command), and through go tool fentrygen
// with -kernels. The output names each kernel before its run, every test
// passes in every guest, and a failing test fails go test.
func TestVMRunnerEndToEnd(t *testing.T) {
	if _, err := vmboot.FindHost(); err != nil {
		msg := fmt.Sprintf("VM TEST NOT RUN: %v", err)
		if os.Getenv(vmboot.EnvMode) == "require" || !errors.As(err, new(vmboot.MissingError)) {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg + "; set FENTRYGEN_VM=require to make this a failure")
	}
	dir := testmod.Write(t, map[string][]byte{
		"kern/kern_test.go":       []byte(kernTest),
		"kern/testdata/hello.txt": []byte("hello from the host\n"),
	})
	// go tool fentrygen runs the command of this checkout.
	gomod := filepath.Join(dir, "go.mod")
	mod, err := os.ReadFile(gomod)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(gomod, append(mod, "\ntool github.com/fentrygen/fentrygen/cmd/fentrygen\n"...), 0o644))

	bin := filepath.Join(t.TempDir(), "fentrygen")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	goTest := func(args ...string) (string, error) {
		cmd := exec.Command("go", append([]string{"test", "-count=1", "-v"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		t.Logf("go test %s:\n%s", strings.Join(args, " "), out)
		return string(out), err
	}

	got, err := goTest("-exec", bin+" vm", "-run", "TestKernel|TestProbe", "./kern")
	require.NoError(t, err)
	var names []string
	for _, s := range vmboot.AllSeries() {
		names = append(names, s.Name)
		head := fmt.Sprintf("=== fentrygen vm: kernel %s, Debian ", s.Name)
		require.Contains(t, got, head)
		run := got[strings.Index(got, head):]
		if next := strings.Index(run[len(head):], "=== fentrygen vm: kernel "+s.Name+": "); next >= 0 {
			run = run[:len(head)+next]
		}
		// The guest said which kernel it is before its tests ran.
		release := run[strings.Index(run, "=== fentrygen vm: Linux ")+len("=== fentrygen vm: Linux "):]
		release = release[:strings.IndexByte(release, ' ')]
		assert.Equal(t, s.Name, vmboot.SeriesOf(release), release)
		assert.Contains(t, run, "uname -r: "+release)
		assert.Contains(t, run, "testdata/hello.txt: hello from the host")
		assert.Contains(t, run, "--- PASS: TestKernel")
		assert.Contains(t, run, "fentry on shmem_file_llseek counted 3 calls")
		assert.Contains(t, run, "--- PASS: TestProbe")
		assert.Contains(t, got, fmt.Sprintf("=== fentrygen vm: kernel %s: exit status 0 (", s.Name))
	}
	assert.Contains(t, got, "=== fentrygen vm: passed on "+strings.Join(names, ", "))
	assert.Contains(t, got, "ok  \texample.com/probes/kern")

	// A probe on a module's function, the module loaded by -modules.
	got, err = goTest("-exec", bin+" vm -modules loop", "-run", "TestModule", "./kern")
	require.NoError(t, err)
	for _, s := range vmboot.AllSeries() {
		assert.Contains(t, got, fmt.Sprintf("=== fentrygen vm: kernel %s: exit status 0 (", s.Name))
	}
	assert.Equal(t, len(names), strings.Count(got, "vminit: loaded module loop.ko"), "loaded in each guest")
	assert.Equal(t, len(names), strings.Count(got, "fentry on loop:loop_control_ioctl counted 2 calls"))

	// A failing test, on one kernel, through go tool.
	last := names[len(names)-1]
	got, err = goTest("-exec", "go tool fentrygen vm -kernels "+last, "-run", "TestFails", "./kern")
	require.Error(t, err)
	assert.Contains(t, got, "this test fails on purpose")
	assert.Contains(t, got, "=== fentrygen vm: FAILED on "+last+": exit status 1")
	assert.NotContains(t, got, "=== fentrygen vm: kernel "+names[0]+",")
	assert.Contains(t, got, "FAIL\texample.com/probes/kern")
}

// TestVMUsage: mistakes on the command line are usage errors, found
// before anything boots.
func TestVMUsage(t *testing.T) {
	_, stderr, err := runIn(t, "", "vm")
	assert.ErrorAs(t, err, new(usageError))
	assert.Contains(t, stderr, "usage: fentrygen vm [-kernels 6.1,6.12,7.x]")
	_, _, err = runIn(t, "", "vm", "-kernels", "5.10", "x.test")
	assert.ErrorAs(t, err, new(usageError))
	assert.ErrorContains(t, err, `no kernel series "5.10"`)
	_, _, err = runIn(t, "", "vm", "-list", "x.test")
	assert.ErrorAs(t, err, new(usageError))
	_, _, err = runIn(t, "", "vm", filepath.Join(t.TempDir(), "missing.test"))
	assert.ErrorContains(t, err, "missing.test")
}

// TestStatic: fentrygen is the guest's /init in fentrygen vm, so nothing
// it links may need the C library: no net, os/user or cgo, which would
// make `go tool fentrygen` a dynamic executable where cgo is on.
func TestStatic(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "net", "os/user", "runtime/cgo", "plugin":
			t.Errorf("cmd/fentrygen links %s, which needs cgo where it is on: fentrygen vm's guest has no C library", pkg)
		}
	}
	assert.Zero(t, testTimeout([]string{"-test.v"}))
	assert.Equal(t, "11m0s", testTimeout([]string{"-test.paniconexit0", "-test.timeout=10m0s"}).String())
}
