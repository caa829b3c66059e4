package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

// errReported means the diagnostics were already printed: exit status 1.
var errReported = errors.New("errors reported")

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run is the whole command: main only maps its error to an exit status.
func run(stdout, stderr io.Writer, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "describe":
			return runDescribe(stdout, stderr, args[1:])
		case "snapshot":
			return runSnapshot(stdout, stderr, args[1:])
		case "new":
			return runNew(stdout, stderr, args[1:])
		case "check":
			return runCheck(stdout, stderr, args[1:])
		case "vm":
			return runVM(stdout, stderr, args[1:])
		}
	}
	return runGenerate(stdout, stderr, args)
}

// newFlags makes a flag set whose -h prints synopsis and flags to stderr and
// whose errors are returned, not fatal.
func newFlags(stderr io.Writer, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n", strings.ReplaceAll(synopsis, "`", ""))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; -h is not an error, other mistakes are usage errors.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err != nil {
		return false, usageError{err}
	}
	return false, nil
}

// btfSource is where BTF came from, for messages, with the kernel's
// modules.
type btfSource struct {
	spec *cbtf.Spec
	from string
	mods *fbtf.Modules
}

// loadBTF picks BTF in the documented order: the explicit file, the
// package's pinned snapshot (pinned may be ""), the running kernel, and the
// snapshot embedded in fentrygen. Files and the embedded snapshot are read
// by fbtf.LoadFile and fbtf.Embedded, which refuse anything but a bounded
// regular file of well-formed BTF; their errors read "FILE: ...", and a
// bad pinned file is an error, not a reason to look elsewhere. Kernel
// modules' BTF comes from the files given (split on the vmlinux BTF
// chosen), the modules a snapshot keeps, and the files beside a vmlinux
// (the running kernel's /sys/kernel/btf).
func loadBTF(explicit, pinned string, files moduleFiles) (btfSource, error) {
	src, err := loadVmlinux(explicit, pinned)
	if err != nil {
		return src, err
	}
	src.mods = modulesOf(src.spec, src.from, files)
	return src, nil
}

func loadVmlinux(explicit, pinned string) (btfSource, error) {
	if explicit != "" {
		spec, err := fbtf.LoadFile(explicit)
		return btfSource{spec: spec, from: explicit}, err
	}
	if pinned != "" {
		pinned = relative(pinned)
		if _, err := os.Stat(pinned); !errors.Is(err, fs.ErrNotExist) {
			spec, err := fbtf.LoadFile(pinned)
			return btfSource{spec: spec, from: pinned}, err
		}
	}
	if _, err := os.Stat(fbtf.KernelPath); err == nil {
		spec, err := fbtf.LoadKernel()
		return btfSource{spec: spec, from: fbtf.KernelPath}, err
	}
	spec, err := fbtf.Embedded()
	return btfSource{spec: spec, from: fbtf.EmbeddedName}, err
}

// relative is path relative to the working directory when it lies below
// it, as diagnostics show paths.
func relative(path string) string {
	if !filepath.IsAbs(path) {
		return path
	}
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return path
}

// errorInjection reads the kernel's error-injection list, or returns nil when
// it cannot be read (eligibility for fmod_ret is then "unknown").
func errorInjection() fbtf.ErrorInjection {
	f, err := os.Open(fbtf.ErrorInjectionListPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	list, err := fbtf.ParseErrorInjection(f)
	if err != nil {
		return nil
	}
	return list
}
