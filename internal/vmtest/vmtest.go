// Package vmtest runs Go tests inside Debian kernels booted under QEMU, so
// that programs meet a real verifier on a kernel that allows fentry.
//
// A test opts in with [Run]: on the host, Run boots each kernel of
// [Kernels] with an initramfs holding this package's test binary (built
// static) and a tiny init, runs just that test in the guest and turns the
// guest's exit status into the subtest's result; in the guest, Run calls the
// body. When QEMU or the kernels are missing the test skips loudly, except
// with FENTRYGEN_VM=require, where it fails.
package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// EnvInVM is set (to the guest's kernel release) inside the guest.
	EnvInVM = "FENTRYGEN_IN_VM"
	// EnvMode is "require" to fail, rather than skip, when no VM can run.
	EnvMode = "FENTRYGEN_VM"

	markerKernel = "FENTRYGEN-VM-KERNEL"
	markerExit   = "FENTRYGEN-VM-EXIT"
)

// InVM reports whether this process runs inside a test VM.
func InVM() bool { return os.Getenv(EnvInVM) != "" }

// Required reports whether VM tests must run (FENTRYGEN_VM=require).
func Required() bool { return os.Getenv(EnvMode) == "require" }

// Run runs body inside each test kernel, one boot per kernel, as subtests
// named after the kernel series. Inside the guest it just calls body.
func Run(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	if InVM() {
		body(t)
		return
	}
	h, err := host()
	if err == nil {
		err = h.testImage()
	}
	if err != nil {
		unavailable(t, err)
		return
	}
	for _, k := range h.kernels {
		t.Run(k.Name, func(t *testing.T) {
			top := strings.SplitN(t.Name(), "/", 2)[0]
			res, err := h.boot(k, h.testInitrd, []string{"/test", "-test.run=^" + regexp.QuoteMeta(top) + "$", "-test.v", "-test.count=1"})
			if err != nil {
				t.Fatalf("boot %s: %v\n%s", k.Package, err, res.output)
			}
			report(t, k, res)
		})
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

// result is what one boot printed and how the test binary exited.
type result struct {
	release string
	exit    int
	output  string
	elapsed time.Duration
}

func report(t *testing.T, k Kernel, res result) {
	t.Helper()
	if res.exit != 0 {
		t.Fatalf("in the guest (Linux %s) the test failed with status %d:\n%s", res.release, res.exit, res.output)
	}
	top := strings.SplitN(t.Name(), "/", 2)[0]
	if strings.Contains(res.output, "--- SKIP: "+top) {
		t.Skipf("skipped in the guest (Linux %s):\n%s", res.release, res.output)
	}
	if !strings.Contains(res.output, "--- PASS: "+top) {
		t.Fatalf("guest (Linux %s) exited 0 but did not report %s passing:\n%s", res.release, top, res.output)
	}
	t.Logf("ran on Linux %s (%s) in %.1fs:\n%s", res.release, k.Package, res.elapsed.Seconds(), res.output)
	logRun(t.Name(), res)
}

// logRun appends "TEST passed on Linux RELEASE in Ns" to the file named by
// $FENTRYGEN_VM_LOG, so CI can show where every VM test ran without -v.
func logRun(name string, res result) {
	path := os.Getenv("FENTRYGEN_VM_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	pkg := "?"
	if wd, err := os.Getwd(); err == nil {
		pkg = filepath.Base(wd)
	}
	fmt.Fprintf(f, "%-12s %-44s passed on Linux %s in %.1fs\n", pkg, name, res.release, res.elapsed.Seconds())
}

// hostEnv is what booting needs, prepared once per process.
type hostEnv struct {
	qemu    string
	kernels []Kernel

	testOnce   sync.Once
	testInitrd string
	testErr    error
}

var host = sync.OnceValues(func() (*hostEnv, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("qemu-system-x86_64 not found: %w", err)
	}
	kernels, err := Kernels()
	if err != nil {
		return nil, err
	}
	return &hostEnv{qemu: qemu, kernels: kernels}, nil
})

// testImage builds, once, the initrd holding this package's test binary.
func (h *hostEnv) testImage() error {
	h.testOnce.Do(func() {
		// go test runs a package's tests in the package's folder: "." is it.
		h.testInitrd, h.testErr = buildInitrd("test", "test", "-c", ".")
	})
	return h.testErr
}

// buildInitrd packs the static vminit as /init and, as /name, what
// `go ARGS -o FILE` builds with CGO_ENABLED=0.
func buildInitrd(name string, goArgs ...string) (string, error) {
	dir, err := os.MkdirTemp("", "fentrygen-vm-")
	if err != nil {
		return "", err
	}
	initBin := filepath.Join(dir, "init")
	testBin := filepath.Join(dir, name)
	main := append(append([]string{}, goArgs[:len(goArgs)-1]...), "-o", testBin, goArgs[len(goArgs)-1])
	for _, args := range [][]string{
		{"build", "-o", initBin, "github.com/fentrygen/fentrygen/internal/vmtest/vminit"},
		main,
	} {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	files := map[string]cpioFile{}
	for name, path := range map[string]string{"init": initBin, name: testBin} {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		files[name] = cpioFile{mode: 0o755, data: data}
	}
	files["vmtest.env"] = cpioFile{mode: 0o644, data: []byte(EnvMode + "=" + os.Getenv(EnvMode) + "\n")}
	initrd := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeCpio(w, files); err != nil {
		f.Close()
		return "", err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return initrd, f.Close()
}

// Timeout bounds one boot: $FENTRYGEN_VM_TIMEOUT (a Go duration) or 5m.
func Timeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FENTRYGEN_VM_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

var exitLine = regexp.MustCompile(markerExit + ` (-?\d+)`)

// boot runs argv in the guest: the kernel command line's words after "--"
// reach /init, which runs them. Words must not contain spaces.
func (h *hostEnv) boot(k Kernel, initrd string, argv []string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout())
	defer cancel()
	for _, a := range argv {
		if strings.ContainsAny(a, " \t\"") {
			return result{}, fmt.Errorf("guest argument %q: no spaces or quotes on a kernel command line", a)
		}
	}
	args := []string{
		"-accel", "tcg", "-cpu", "max", "-m", "1G", "-smp", "2",
		"-kernel", k.Vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 -- " + strings.Join(argv, " "),
		"-nographic", "-no-reboot", "-nic", "none",
	}
	cmd := exec.CommandContext(ctx, h.qemu, args...)
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	res := parse(out.String())
	res.elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s did not power off within %v", strings.Join(argv, " "), Timeout())
	}
	if err != nil {
		return res, fmt.Errorf("qemu: %w", err)
	}
	if res.exit == -1 {
		return res, fmt.Errorf("no %s line: the guest did not finish", markerExit)
	}
	return res, nil
}

// parse keeps the lines between the kernel marker and the exit marker, and
// the exit status (-1 without an exit marker).
func parse(console string) result {
	res := result{exit: -1}
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(console, "\r", "")))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		// The firmware's escape sequences may precede a marker on its line.
		if i := strings.Index(line, markerKernel+" "); i >= 0 {
			res.release, started = strings.TrimSpace(line[i+len(markerKernel)+1:]), true
			continue
		}
		if m := exitLine.FindStringSubmatch(line); m != nil {
			res.exit, _ = strconv.Atoi(m[1])
			break
		}
		if started || strings.Contains(line, "vminit") || strings.Contains(line, "Kernel panic") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	res.output = strings.TrimSpace(b.String())
	if res.output == "" && res.exit == -1 {
		res.output = tail(console, 40)
	}
	return res
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunProgram builds the main package pkg (static), boots each test kernel
// with it as /BASENAME run with args, and writes what it printed under a
// heading naming the kernel. QEMU and the kernels are installed when
// missing and possible (see EnsureQEMU).
func RunProgram(w io.Writer, pkg string, args ...string) error {
	if err := EnsureQEMU(w); err != nil {
		return err
	}
	h, err := host()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "building %s for the guest...\n", pkg)
	name := path.Base(pkg)
	initrd, err := buildInitrd(name, "build", pkg)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(initrd))
	for _, k := range h.kernels {
		res, err := h.boot(k, initrd, append([]string{"/" + name}, args...))
		fmt.Fprintf(w, "\n=== Linux %s (Debian %s, QEMU TCG guest, %.1fs) ===\n%s\n", res.release, k.Package, res.elapsed.Seconds(), res.output)
		if err != nil {
			return fmt.Errorf("kernel %s: %w", k.Name, err)
		}
		if res.exit != 0 {
			return fmt.Errorf("kernel %s: the program exited with status %d", k.Name, res.exit)
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
