package vmboot

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Exec is a program [RunExec] runs in each kernel.
type Exec struct {
	// Path is the program on the host: a statically linked x86-64 ELF
	// executable, such as a test binary built with CGO_ENABLED=0. The
	// guest has no C library, so a dynamically linked one is refused.
	Path string
	// Args are its arguments. The absolute paths given to go test's file
	// flags (-test.testlogfile=/tmp/go-build.../testlog.txt,
	// -test.coverprofile=, -test.outputdir=...) have their folders made in
	// the guest, so that the test can write there; what it writes stays in
	// the guest.
	Args []string
	// Series are the kernels, in order; nil means all of them.
	Series []Series
	// Dir, if not "", is a folder copied into the guest (hidden entries
	// and all but regular files and folders left out), where the program
	// starts, as go test starts a test binary in its package's folder. A
	// folder holding more than MaxDirBytes is not copied: the program then
	// starts in an empty folder, and a note says so.
	Dir string
	// Init is the guest's /init: a static program that does what
	// internal/vminit does. When nil, internal/vmtest/vminit is built,
	// which needs this module's source (go build in this module).
	Init []byte
	// Timeout bounds each boot; 0 means Timeout().
	Timeout time.Duration
	// Modules are kernel modules the guest loads before the program
	// starts, from each kernel's own packages, dependencies first (see
	// ModuleFiles).
	Modules []string
}

// MaxDirBytes is the most Exec.Dir may hold to be copied into the guest.
const MaxDirBytes = 64 << 20

// guestDir is where, in the guest, Exec.Dir is copied and the program
// starts. Not below /tmp, where vminit mounts a tmpfs.
const guestDir = "/fentrygen-vm/wd"

// Outcome is how a program did on one kernel.
type Outcome struct {
	Kernel Kernel
	// Release is the guest's uname -r ("" when the guest never said).
	Release string
	// Exit is the program's exit status, -1 when it did not finish.
	Exit int
	// Err says why the boot failed, if it did (no exit status, QEMU
	// failed, the time limit passed).
	Err     error
	Elapsed time.Duration
}

// OK reports whether the program ran and exited 0.
func (o Outcome) OK() bool { return o.Err == nil && o.Exit == 0 }

func (o Outcome) String() string { return o.Kernel.Name + ": " + o.status() }

func (o Outcome) status() string {
	if o.Err != nil {
		return o.Err.Error()
	}
	return fmt.Sprintf("exit status %d", o.Exit)
}

// RunExec boots each kernel of e.Series in turn under QEMU, with e's
// program as the guest's program, and writes to w what it prints (standard
// output and error, as the serial console carries them) while it runs,
// each run under a line naming the kernel and its Debian package, then a
// line with its exit status. It returns one Outcome per kernel booted; the
// error says why nothing could run (QEMU or the kernels missing, the
// program refused). QEMU and the kernels are not installed here; see
// EnsureQEMU.
func RunExec(w io.Writer, e Exec) ([]Outcome, error) {
	prog, err := os.ReadFile(e.Path)
	if err != nil {
		return nil, err
	}
	if err := CheckStatic(e.Path, prog); err != nil {
		return nil, err
	}
	list := e.Series
	if list == nil {
		list = series
	}
	qemu, err := findQEMU()
	if err != nil {
		return nil, err
	}
	kernels, err := KernelsOf(list)
	if err != nil {
		return nil, MissingError{Err: err}
	}
	h := &Host{QEMU: qemu, Kernels: kernels}

	name := filepath.Base(e.Path)
	if name == "init" || strings.HasPrefix(name, "vmtest.") || strings.HasPrefix(name, ".") {
		name = "prog-" + name
	}
	argv := append([]string{"/" + name}, e.Args...)
	files := map[string]File{
		"vmtest.args":  {Mode: 0o644, Data: []byte(strings.Join(argv, "\x00"))},
		"vmtest.dir":   {Mode: 0o644, Data: []byte(guestDir + "\n")},
		"vmtest.mkdir": {Mode: 0o644, Data: []byte(strings.Join(append(flagDirs(e.Args), guestDir), "\n") + "\n")},
	}
	if e.Dir != "" {
		copied, note, err := dirFiles(e.Dir)
		if err != nil {
			return nil, err
		}
		if note != "" {
			fmt.Fprintf(w, "=== fentrygen vm: %s\n", note)
		}
		for rel, f := range copied {
			files[strings.TrimPrefix(path.Join(guestDir, rel), "/")] = f
		}
	}
	if len(e.Modules) > 0 {
		mods, notes, err := ModuleFiles(kernels, e.Modules)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			fmt.Fprintf(w, "=== fentrygen vm: %s\n", n)
		}
		for name, f := range mods {
			files[name] = f
		}
	}
	initrd, err := BuildInitrd(InitrdSpec{Name: name, Prog: prog, Init: e.Init, Files: files})
	if err != nil {
		return nil, fmt.Errorf("build the guest's initramfs: %w", err)
	}
	defer initrd.Close()

	var out []Outcome
	for _, k := range h.Kernels {
		fmt.Fprintf(w, "=== fentrygen vm: kernel %s, Debian %s (QEMU TCG guest)\n", k.Name, k.Package)
		stream := &consoleStream{w: w, onRelease: func(release string) {
			fmt.Fprintf(w, "=== fentrygen vm: Linux %s runs %s\n", release, name)
		}}
		res, err := h.Boot(k, BootSpec{Initrd: initrd, stream: stream, Timeout: e.Timeout})
		o := Outcome{Kernel: k, Release: res.Release, Exit: res.Exit, Err: err, Elapsed: res.Elapsed}
		if !stream.wrote && res.Output != "" {
			fmt.Fprintln(w, res.Output)
		}
		fmt.Fprintf(w, "=== fentrygen vm: kernel %s: %s (%.1fs)\n", k.Name, o.status(), res.Elapsed.Seconds())
		release := o.Release
		if release == "" {
			release = "?"
		}
		Log(fmt.Sprintf("%-44s booted Linux %s (fentrygen vm %s: %s) in %.1fs", "(fentrygen vm "+k.Name+")", release, name, o.status(), o.Elapsed.Seconds()))
		out = append(out, o)
	}
	return out, nil
}

// Summarize is one line saying on which kernels the program passed and
// failed.
func Summarize(outcomes []Outcome) string {
	var passed, failed []string
	for _, o := range outcomes {
		if o.OK() {
			passed = append(passed, o.Kernel.Name)
		} else {
			failed = append(failed, o.String())
		}
	}
	switch {
	case len(failed) == 0:
		return "passed on " + strings.Join(passed, ", ")
	case len(passed) == 0:
		return "FAILED on " + strings.Join(failed, "; ")
	default:
		return "FAILED on " + strings.Join(failed, "; ") + "; passed on " + strings.Join(passed, ", ")
	}
}

// CheckStatic says why data, the file at name, cannot be a guest's
// program: it must be an x86-64 ELF executable without an interpreter
// (PT_INTERP), since the guest has no dynamic loader or C library.
func CheckStatic(name string, data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", name, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || (f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN) {
		return fmt.Errorf("%s is not an x86-64 executable (%v, %v)", name, f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(p.Open())
		libs, _ := f.ImportedLibraries()
		return fmt.Errorf("%s is dynamically linked (it needs %s and %s), and the guest has no C library: build it statically, with CGO_ENABLED=0 (for tests: CGO_ENABLED=0 go test -exec 'go tool fentrygen vm' ./...)",
			name, strings.TrimRight(string(interp), "\x00"), strings.Join(libs, ", "))
	}
	return nil
}

// fileFlags are go test's flags that name a file (false) or a folder
// (true) the test binary writes.
var fileFlags = map[string]bool{
	"testlogfile": false, "coverprofile": false, "cpuprofile": false, "memprofile": false,
	"blockprofile": false, "mutexprofile": false, "trace": false,
	"outputdir": true, "gocoverdir": true, "fuzzcachedir": true,
}

// flagDirs are the folders the guest needs for the absolute paths that
// go test's file flags in args name: the folder itself, or the file's.
func flagDirs(args []string) []string {
	var dirs []string
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		isDir, known := fileFlags[strings.TrimPrefix(name, "test.")]
		if !ok || !known || !strings.HasPrefix(a, "-") || !path.IsAbs(value) {
			continue
		}
		if isDir {
			dirs = append(dirs, path.Clean(value))
		} else {
			dirs = append(dirs, path.Dir(value))
		}
	}
	return dirs
}

// dirFiles returns the regular files below dir by path relative to it,
// leaving out hidden entries (".git"); nothing, and a note saying so, when
// they add up to more than MaxDirBytes.
func dirFiles(dir string) (map[string]File, string, error) {
	files := map[string]File{}
	total := 0
	errTooBig := errors.New("too big")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if total += int(info.Size()); total > MaxDirBytes {
			return errTooBig
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = File{Mode: uint32(info.Mode().Perm()), Data: data}
		return nil
	})
	if errors.Is(err, errTooBig) {
		return nil, fmt.Sprintf("%s holds more than %d MiB: not copied into the guest, where the program starts in an empty folder", dir, MaxDirBytes>>20), nil
	}
	return files, "", err
}
