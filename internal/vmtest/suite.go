package vmtest

import (
	"errors"
	"fmt"
	"github.com/fentrygen/fentrygen/internal/vmboot"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// suite is a test package's VM tests on the host: one initramfs, and one
// boot per kernel running all of them, both made when the first test asks.
type suite struct {
	opts options

	prepOnce sync.Once
	prepErr  error
	h        *vmboot.Host
	initrd   *os.File
	mke2fs   string
	boots    map[string]*kernelBoot
}

// kernelBoot is one kernel's boot: console output, and the guest's tests.
type kernelBoot struct {
	once sync.Once
	res  vmboot.Result
	err  error
	run  guestRun
}

// prepare finds QEMU and the kernels, and builds the initramfs holding
// this package's test binary and what the options ask for.
func (s *suite) prepare() error {
	s.prepOnce.Do(func() { s.prepErr = s.doPrepare() })
	return s.prepErr
}

func (s *suite) doPrepare() error {
	h, err := vmboot.FindHost()
	if err != nil {
		return err
	}
	spec := vmboot.InitrdSpec{
		// go test runs a package's tests in the package's folder: "." is it.
		Name:   "test",
		GoArgs: []string{"test", "-c", "."},
		Env:    []string{envRun + "=" + hostFlag("run"), envSkip + "=" + hostFlag("skip")},
		Files:  map[string]vmboot.File{},
	}
	if s.opts.ext4 {
		if s.mke2fs, err = findMke2fs(); err != nil {
			return err
		}
		spec.Mounts = append(spec.Mounts, ext4Device+" "+ext4Dir+" ext4")
	}
	if len(s.opts.modules) > 0 {
		files, notes, err := vmboot.ModuleFiles(h.Kernels, s.opts.modules)
		if err != nil {
			return vmboot.MissingError{Err: fmt.Errorf("vmtest.Modules: %w", err)}
		}
		for _, n := range notes {
			vmboot.Log("vmtest.Modules: " + n)
		}
		for name, f := range files {
			spec.Files[name] = f
		}
	}
	if len(s.opts.tools) > 0 {
		files, err := toolFiles(s.opts.tools)
		if err != nil {
			return err
		}
		for name, f := range files {
			spec.Files[name] = f
		}
	}
	initrd, err := vmboot.BuildInitrd(spec)
	if err != nil {
		return fmt.Errorf("build the guest's initramfs: %w", err)
	}
	s.h, s.initrd = h, initrd
	s.boots = map[string]*kernelBoot{}
	for _, k := range h.Kernels {
		s.boots[k.Name] = &kernelBoot{}
	}
	return nil
}

// close releases the initramfs (already unlinked).
func (s *suite) close() {
	if s.initrd != nil {
		s.initrd.Close()
	}
}

// boot boots k once, running every TestVM* test in the guest.
func (s *suite) boot(k vmboot.Kernel) *kernelBoot {
	b := s.boots[k.Name]
	b.once.Do(func() {
		b.res, b.err = s.runGuest(k)
		var kernelErr *vmboot.KernelError
		switch {
		case errors.As(b.err, &kernelErr):
			// The guest's kernel broke (an oops or a soft lockup while
			// trampolines were patched into hot functions, seen under
			// TCG): once more, loudly. A kernel our programs break breaks
			// again, and fails the tests then.
			msg := fmt.Sprintf("%-44s kernel failed (%v): booting it again", "(boot "+k.Name+")", b.err)
			vmboot.Log(msg)
			fmt.Fprintf(os.Stderr, "vmtest: %s; the end of its console:\n%s\n", msg, b.res.Output)
			b.res, b.err = s.runGuest(k)
		case b.err != nil && b.res.Release == "" && b.res.Elapsed < vmboot.Timeout():
			// The kernel died before the guest's program started: nothing
			// of the tests ran (a rare early-boot crash under TCG). Say so
			// and boot it once more.
			msg := fmt.Sprintf("%-44s died before its program started (%v): booting it again", "(boot "+k.Name+")", b.err)
			vmboot.Log(msg)
			fmt.Fprintf(os.Stderr, "vmtest: %s; the end of its console:\n%s\n", msg, b.res.Output)
			b.res, b.err = s.runGuest(k)
		}
		b.run = splitTests(b.res.Output)
		logBoot(k, b)
	})
	return b
}

func (s *suite) runGuest(k vmboot.Kernel) (vmboot.Result, error) {
	var disk *os.File
	if s.opts.ext4 {
		var err error
		if disk, err = newExt4Disk(s.mke2fs); err != nil {
			return vmboot.Result{}, err
		}
		defer disk.Close()
	}
	argv := []string{"/test", "-test.run=^TestVM", "-test.v", "-test.count=1"}
	// Shorter than the boot's own limit: a test that hangs panics with its
	// name and stacks, rather than QEMU being killed silently.
	if d := vmboot.Timeout(); d > time.Minute {
		argv = append(argv, "-test.timeout="+(d-30*time.Second).String())
	}
	return s.h.Boot(k, vmboot.BootSpec{Initrd: s.initrd, Disk: disk, Argv: argv})
}

// report turns what the guest said about t's parent test on kernel k into
// t's result.
func (s *suite) report(t *testing.T, k vmboot.Kernel) {
	t.Helper()
	b := s.boot(k)
	top, _, _ := strings.Cut(t.Name(), "/")
	v := b.verdict(top, k)
	logTest(t.Name(), v.word, b.res.Release, v.elapsed)
	for _, line := range strings.Split(v.msg, "\n") {
		if _, summary, ok := strings.Cut(line, markerSummary+" "); ok {
			vmboot.Log(summary)
		}
	}
	switch v.word {
	case passed:
		t.Log(v.msg)
	case skipped:
		t.Skip(v.msg)
	default:
		t.Fatal(v.msg)
	}
}

const (
	passed  = "passed"
	skipped = "skipped"
	failed  = "FAILED"
)

// verdict is a test's result on one kernel: passed, skipped or FAILED,
// with what to tell the user.
type verdict struct {
	word    string
	msg     string
	elapsed time.Duration
}

// verdict says what the boot of k tells about the top-level test top.
func (b *kernelBoot) verdict(top string, k vmboot.Kernel) verdict {
	if len(b.run.order) == 0 && b.err != nil {
		return verdict{word: failed, msg: fmt.Sprintf("boot %s: %v\n%s", k.Package, b.err, b.res.Output)}
	}
	gt := b.run.tests[top]
	culprit, out := b.run.cutShort()
	switch {
	case gt == nil && culprit != "":
		return verdict{word: failed, msg: fmt.Sprintf("%s never ran in the guest (Linux %s): the test binary died during %s, before it (see that test's failure)%s", top, b.res.Release, culprit, errSuffix(b.err))}
	case gt == nil:
		return verdict{word: failed, msg: fmt.Sprintf("%s did not run in the guest (Linux %s)%s; the guest's output:\n%s", top, b.res.Release, errSuffix(b.err), vmboot.Tail(b.res.Output, 60))}
	case top == culprit:
		return verdict{word: failed, elapsed: gt.elapsed, msg: fmt.Sprintf("in the guest (Linux %s) the test binary died during %s (exit status %d)%s; the end of its output:\n%s", b.res.Release, top, b.res.Exit, errSuffix(b.err), out)}
	case gt.result == "PASS":
		return verdict{word: passed, elapsed: gt.elapsed, msg: fmt.Sprintf("ran on Linux %s (%s) in %.1fs:\n%s", b.res.Release, k.Package, gt.elapsed.Seconds(), gt.output)}
	case gt.result == "SKIP":
		return verdict{word: skipped, elapsed: gt.elapsed, msg: fmt.Sprintf("skipped in the guest (Linux %s):\n%s", b.res.Release, gt.output)}
	default:
		return verdict{word: failed, elapsed: gt.elapsed, msg: fmt.Sprintf("in the guest (Linux %s) the test failed:\n%s", b.res.Release, gt.output)}
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// markerSummary starts a line a guest test wants in the CI log.
const markerSummary = "FENTRYGEN-SUMMARY"

// Summary logs line in the guest so that the host copies it into the CI
// log ($FENTRYGEN_VM_LOG): one line of a result worth seeing without -v,
// such as a side-by-side comparison.
func Summary(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("%s %s", markerSummary, fmt.Sprintf(format, args...))
}

// logTest appends "PKG TEST VERDICT on Linux RELEASE in Ns" to the file
// named by $FENTRYGEN_VM_LOG, so CI can show where every VM test ran
// without -v; logBoot appends one line per boot.
func logTest(name, verdict, release string, elapsed time.Duration) {
	if release == "" {
		release = "?"
	}
	vmboot.Log(fmt.Sprintf("%-44s %s on Linux %s in %.1fs", name, verdict, release, elapsed.Seconds()))
}

func logBoot(k vmboot.Kernel, b *kernelBoot) {
	release := b.res.Release
	if release == "" {
		release = "?"
	}
	count := map[string]int{}
	for _, t := range b.run.tests {
		count[t.result]++
	}
	status := fmt.Sprintf("%d passed, %d failed, %d skipped", count["PASS"], count["FAIL"], count["SKIP"])
	if name, _ := b.run.cutShort(); name != "" {
		status += ", cut short during " + name
	}
	if b.err != nil {
		status += ", " + b.err.Error()
	}
	vmboot.Log(fmt.Sprintf("%-44s booted Linux %s (%s) in %.1fs", "(boot "+k.Name+")", release, status, b.res.Elapsed.Seconds()))
}
