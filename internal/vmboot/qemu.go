package vmboot

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Host is what booting needs.
type Host struct {
	// QEMU is qemu-system-x86_64's path.
	QEMU string
	// Kernels are all the test kernels.
	Kernels []Kernel
}

// FindHost finds QEMU and the kernels, once per process.
var FindHost = sync.OnceValues(func() (*Host, error) {
	qemu, err := findQEMU()
	if err != nil {
		return nil, err
	}
	kernels, err := Kernels()
	if err != nil {
		return nil, MissingError{Err: err}
	}
	return &Host{QEMU: qemu, Kernels: kernels}, nil
})

func findQEMU() (string, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", MissingError{Err: fmt.Errorf("qemu-system-x86_64 not found: %w", err)}
	}
	return qemu, nil
}

// InitrdSpec says what goes into an initramfs.
type InitrdSpec struct {
	// Name is the program's file, /NAME in the guest.
	Name string
	// Prog is the program, static; when nil, GoArgs build it with
	// `go ARGS... -o FILE LAST` (LAST: the package).
	Prog   []byte
	GoArgs []string
	// Init is /init, a static program that does what internal/vminit
	// does; when nil, internal/vmtest/vminit is built.
	Init []byte
	// Env is put in the environment of the program in the guest.
	Env []string
	// Mounts are lines "DEVICE DIR FSTYPE" vminit mounts before it starts
	// the program, waiting for the device to appear.
	Mounts []string
	// Files are more files, by path without a leading slash.
	Files map[string]File
}

// BuildInitrd packs /init (vminit, built static, unless given) and the
// program as /NAME (what `go ARGS -o FILE` builds with CGO_ENABLED=0,
// unless given). It returns the initramfs open and already unlinked:
// nothing is left on disk once it is closed, however the process ends.
// QEMU reads it as /dev/fd/N.
func BuildInitrd(spec InitrdSpec) (*os.File, error) {
	dir, err := os.MkdirTemp("", "fentrygen-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var builds [][]string
	initBin, progBin := filepath.Join(dir, "init"), filepath.Join(dir, spec.Name)
	if spec.Init == nil {
		builds = append(builds, []string{"build", "-o", initBin, "github.com/fentrygen/fentrygen/internal/vmtest/vminit"})
	}
	if spec.Prog == nil {
		last := len(spec.GoArgs) - 1
		builds = append(builds, append(append([]string{}, spec.GoArgs[:last]...), "-o", progBin, spec.GoArgs[last]))
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	files := map[string]File{}
	for name, b := range map[string]struct {
		bytes []byte
		path  string
	}{"init": {spec.Init, initBin}, spec.Name: {spec.Prog, progBin}} {
		if b.bytes == nil {
			if b.bytes, err = os.ReadFile(b.path); err != nil {
				return nil, err
			}
		}
		files[name] = File{Mode: 0o755, Data: b.bytes}
	}
	for name, f := range spec.Files {
		files[name] = f
	}
	files["vmtest.env"] = File{Mode: 0o644, Data: []byte(strings.Join(append(spec.Env, EnvMode+"="+os.Getenv(EnvMode)), "\n") + "\n")}
	if len(spec.Mounts) > 0 {
		files["vmtest.mounts"] = File{Mode: 0o644, Data: []byte(strings.Join(spec.Mounts, "\n") + "\n")}
	}
	f, err := os.CreateTemp(dir, "initrd-")
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeCpio(w, files); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// BootSpec says what one boot runs.
type BootSpec struct {
	// Initrd is the initramfs (see BuildInitrd).
	Initrd *os.File
	// Disk, if not nil, is attached as an NVMe drive.
	Disk *os.File
	// Argv is what /init runs: the kernel command line's words after
	// "--", which must not contain spaces or quotes. With none, /init runs
	// the initramfs' /vmtest.args.
	Argv []string
	// stream, if not nil, gets the console while the guest runs.
	stream *consoleStream
	// Timeout bounds the boot; 0 means Timeout().
	Timeout time.Duration
}

// boot boots k and runs what b says in the guest.
func (h *Host) Boot(k Kernel, b BootSpec) (Result, error) {
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = Timeout()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, a := range b.Argv {
		if strings.ContainsAny(a, " \t\"") {
			return Result{}, fmt.Errorf("guest argument %q: no spaces or quotes on a kernel command line", a)
		}
	}
	cmdline := "console=ttyS0 quiet panic=-1"
	if len(b.Argv) > 0 {
		cmdline += " -- " + strings.Join(b.Argv, " ")
	}
	// ExtraFiles become fds 3, 4, ... in QEMU.
	args := []string{
		"-accel", "tcg", "-cpu", "max", "-m", "1G", "-smp", "2",
		"-kernel", k.Vmlinuz, "-initrd", "/dev/fd/3",
		"-append", cmdline,
		"-nographic", "-no-reboot", "-nic", "none",
	}
	extra := []*os.File{b.Initrd}
	if b.Disk != nil {
		args = append(args,
			"-drive", "file=/dev/fd/4,if=none,format=raw,id=d0",
			"-device", "nvme,serial=fentrygen,drive=d0")
		extra = append(extra, b.Disk)
	}
	cmd := exec.CommandContext(ctx, h.QEMU, args...)
	cmd.ExtraFiles = extra
	var out bytes.Buffer
	var console io.Writer = &out
	stream := b.stream
	if stream != nil {
		console = io.MultiWriter(&out, stream)
	}
	// A guest that hangs before its kernel starts our init (seen under
	// TCG: nothing after the BIOS) is stopped early, so the caller may
	// boot it again without waiting out the whole timeout.
	var kernelFailed atomic.Bool
	watch := &startWatch{failed: func(string) { kernelFailed.Store(true); cancel() }}
	watched := io.MultiWriter(console, watch)
	cmd.Stdout, cmd.Stderr = watched, watched
	start := time.Now()
	var noStart atomic.Bool
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(min(StartLimit, timeout)):
			if !watch.started.Load() {
				noStart.Store(true)
				cancel()
			}
		}
	}()
	err := cmd.Run()
	if stream != nil {
		stream.flush()
	}
	res := parse(out.String())
	res.Elapsed = time.Since(start)
	what := strings.Join(b.Argv, " ")
	if what == "" {
		what = "the guest's program"
	}
	if kernelFailed.Load() {
		return res, &KernelError{Report: watch.report}
	}
	if noStart.Load() {
		return res, fmt.Errorf("the guest did not reach its init within %v", StartLimit)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s did not power off within %v", what, timeout)
	}
	if err != nil {
		return res, fmt.Errorf("qemu: %w", err)
	}
	if res.Exit == -1 {
		return res, fmt.Errorf("no %s line: the guest did not finish", markerExit)
	}
	return res, nil
}

// consoleStream passes on, line by line as the console prints them, what
// parse keeps: the lines between the kernel marker and the exit marker
// (blank lines just before the exit marker left out), and before the
// kernel marker the lines of vminit and of a kernel panic.
type consoleStream struct {
	w io.Writer
	// onRelease, if not nil, is called with the guest's kernel release
	// when the kernel marker passes.
	onRelease func(release string)
	// wrote says some line was passed on.
	wrote   bool
	partial []byte
	started bool
	done    bool
	blanks  int
}

func (c *consoleStream) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(string(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
	return len(p), nil
}

// flush passes on a last line without a newline.
func (c *consoleStream) flush() {
	if len(c.partial) > 0 {
		c.line(string(c.partial))
		c.partial = nil
	}
}

func (c *consoleStream) line(line string) {
	line = strings.ReplaceAll(line, "\r", "")
	switch {
	case c.done:
	case strings.Contains(line, markerKernel+" "):
		c.started = true
		if c.onRelease != nil {
			_, release, _ := strings.Cut(line, markerKernel+" ")
			c.onRelease(strings.TrimSpace(release))
		}
	case exitLine.MatchString(line):
		c.done = true
	case c.started && strings.TrimSpace(line) == "":
		c.blanks++
	case c.started || strings.Contains(line, "vminit") || strings.Contains(line, "Kernel panic"):
		for ; c.blanks > 0; c.blanks-- {
			io.WriteString(c.w, "\n")
		}
		io.WriteString(c.w, line+"\n")
		c.wrote = true
	}
}

// StartLimit is how long a guest may take to reach its init (the kernel
// marker on the console) before Boot stops it.
const StartLimit = 2 * time.Minute

// startWatch notes when the kernel marker passes on the console, and when
// the guest's kernel reports itself broken (an oops, a soft lockup, a
// panic), calling failed once with that report.
type startWatch struct {
	started atomic.Bool
	failed  func(report string)
	report  string
	tail    []byte
}

// kernelFailures are the console's words for a kernel that stopped
// working; a guest that says one is stopped at once.
var kernelFailures = []string{"BUG: soft lockup", "Oops: ", "Kernel panic - not syncing"}

func (w *startWatch) Write(p []byte) (int, error) {
	if w.report != "" {
		return len(p), nil
	}
	buf := append(w.tail, p...)
	if !w.started.Load() && bytes.Contains(buf, []byte(markerKernel)) {
		w.started.Store(true)
	}
	for _, f := range kernelFailures {
		if i := bytes.Index(buf, []byte(f)); i >= 0 && w.failed != nil {
			line, _, _ := bytes.Cut(buf[i:], []byte("\n"))
			w.report = strings.TrimSpace(string(line))
			w.failed(w.report)
			return len(p), nil
		}
	}
	if n := 64; len(buf) > n {
		buf = buf[len(buf)-n:]
	}
	w.tail = append(w.tail[:0], buf...)
	return len(p), nil
}

// KernelError is a guest whose kernel reported itself broken: Boot stops
// it and says what the console said.
type KernelError struct{ Report string }

func (e *KernelError) Error() string { return "the guest's kernel failed: " + e.Report }
