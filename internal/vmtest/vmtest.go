// Package vmtest runs Go tests inside Debian kernels booted under QEMU, so
// that programs meet a real verifier on a kernel that allows fentry.
//
// A package with VM tests calls [Main] from its TestMain, and each VM test,
// named TestVM*, hands its body to [Run]:
//
//	func TestMain(m *testing.M) { vmtest.Main(m) }
//
//	func TestVMConnect(t *testing.T) {
//		vmtest.Run(t, func(t *testing.T) { ... })
//	}
//
// On the host, the first Run boots each kernel of [Kernels] once, with an
// initramfs holding the package's test binary (built static) and a tiny
// init, and runs every TestVM* test the host's -test.run selects in that
// one boot; each Run then reports its test's guest result as subtests named
// after the kernel series ("6.1", "6.12", "7.x"). In the guest, Run calls the
// body. When QEMU or the kernels are missing the tests skip loudly, except
// with FENTRYGEN_VM=require, where they fail.
//
// Options to Main add content to every guest of the package: [Tools] packs
// Debian's libbpf-tools (run them with [Tool]), [Ext4] attaches a fresh
// ext4 disk (mounted at [Ext4Dir]) and [Modules] loads kernel modules of
// each kernel's own packages.
package vmtest

import (
	"errors"
	"fmt"
	"github.com/fentrygen/fentrygen/internal/vmboot"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

const (
	// EnvInVM is set (to the guest's kernel release) inside the guest.
	EnvInVM = vmboot.EnvInVM
	// EnvMode is "require" to fail, rather than skip, when no VM can run.
	EnvMode = vmboot.EnvMode
)

// InVM reports whether this process runs inside a test VM.
func InVM() bool { return os.Getenv(EnvInVM) != "" }

// Required reports whether VM tests must run (FENTRYGEN_VM=require).
func Required() bool { return os.Getenv(EnvMode) == "require" }

// An Option adds content to the guests of a package's VM tests; pass it to
// Main.
type Option func(*options)

type options struct {
	tools   []string
	ext4    bool
	modules []string
}

// Tools packs the named programs of Debian bookworm's libbpf-tools (the C
// originals of BCC's tools, e.g. "vfsstat", "tcpconnlat") into the guest,
// with the shared libraries they need; run them there with [Tool]. The
// packages are downloaded (apt-get download, never installed) into the
// cache folder.
func Tools(names ...string) Option {
	return func(o *options) { o.tools = append(o.tools, names...) }
}

// Ext4 gives every boot a fresh ext4 filesystem on an NVMe disk, mounted in
// the guest at [Ext4Dir]. Making it needs mke2fs (e2fsprogs) on the host.
func Ext4() Option {
	return func(o *options) { o.ext4 = true }
}

// Modules loads the named kernel modules (loop, dummy, xfs...) in every
// guest before its tests start, from the Debian packages of the kernel it
// boots (the image's, or linux-modules-VERSION), decompressed on the host,
// with the modules they depend on first. A module built into a kernel is
// skipped there. Their BTF then is in /sys/kernel/btf/NAME, so probes on
// their functions load.
func Modules(names ...string) Option {
	return func(o *options) { o.modules = append(o.modules, names...) }
}

// current is the package's suite, set by Main on the host.
var current *suite

// Main runs a package's tests and exits; call it from TestMain. On the
// host, the VM tests' guest is prepared, and each kernel booted, lazily:
// by the first Run that needs it; nothing made for the guests outlives
// the process. In the guest, Main just runs the tests.
func Main(m *testing.M, opts ...Option) {
	if InVM() {
		os.Exit(m.Run())
	}
	current = &suite{}
	for _, o := range opts {
		o(&current.opts)
	}
	code := m.Run()
	current.close()
	os.Exit(code)
}

// Run runs body inside each test kernel, as subtests named after the
// kernel series; inside the guest it just calls body. It must be called by
// a top-level test named TestVM*, in a package whose TestMain calls Main.
func Run(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("vmtest.Run in %s: call it from a top-level test, not a subtest", t.Name())
	}
	if !strings.HasPrefix(t.Name(), "TestVM") {
		t.Fatalf("vmtest.Run in %s: VM tests must be named TestVM* (the guest runs -test.run=^TestVM)", t.Name())
	}
	if InVM() {
		ok, err := selects(os.Getenv(envRun), os.Getenv(envSkip), t.Name())
		if err != nil {
			t.Fatalf("the host's -test.run or -test.skip: %v", err)
		}
		if !ok {
			t.Skipf("not selected on the host (-test.run=%q -test.skip=%q)", os.Getenv(envRun), os.Getenv(envSkip))
		}
		body(t)
		return
	}
	s := current
	if s == nil {
		t.Fatal("vmtest.Run needs vmtest.Main: add `func TestMain(m *testing.M) { vmtest.Main(m) }` to this package's tests")
	}
	if err := s.prepare(); err != nil {
		if errors.As(err, new(vmboot.MissingError)) {
			unavailable(t, err)
		}
		t.Fatal(err)
	}
	for _, k := range s.h.Kernels {
		t.Run(k.Name, func(t *testing.T) { s.report(t, k) })
	}
}

func unavailable(t *testing.T, err error) {
	t.Helper()
	msg := fmt.Sprintf("VM TEST NOT RUN: %v (install qemu-system-x86 and make apt-get download work, or see README)", err)
	if Required() {
		t.Fatal(msg)
	}
	t.Skip("!!! " + msg + "; set FENTRYGEN_VM=require to make this a failure")
}

// RunProgram builds the main package pkg (static), boots each test kernel
// with it as /BASENAME run with args, and writes what it prints under a
// line naming the kernel (see RunExec). QEMU and the kernels are
// installed when missing and possible (see EnsureQEMU). Nothing it makes
// outlives it.
func RunProgram(w io.Writer, pkg string, args ...string) error {
	if err := EnsureQEMU(w); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fentrygen-prog-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(w, "building %s for the guest...\n", pkg)
	bin := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	outcomes, err := vmboot.RunExec(w, vmboot.Exec{Path: bin, Args: args})
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		if !o.OK() {
			return errors.New(vmboot.Summarize(outcomes))
		}
	}
	return nil
}

// EnsureQEMU installs qemu-system-x86 with apt-get when it is missing and
// this process is root; otherwise it says what to run.
func EnsureQEMU(w io.Writer) error {
	if _, err := exec.LookPath("qemu-system-x86_64"); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("qemu-system-x86_64 not found: run sudo apt-get install qemu-system-x86")
	}
	fmt.Fprintln(w, "installing qemu-system-x86 (apt-get)...")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "qemu-system-x86"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
