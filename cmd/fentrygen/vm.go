package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmboot"
	"github.com/fentrygen/fentrygen/internal/vminit"
)

// fentrygen vm packs this very executable as the guest's /init: started so
// by the kernel, it is vminit.
func init() {
	if os.Getpid() == 1 && filepath.Base(os.Args[0]) == "init" {
		vminit.Main()
	}
}

const vmSynopsis = "fentrygen vm [-kernels `6.1,6.12,7.x`] [-modules `a,b`] [-timeout `d`] program [arguments] | fentrygen vm -list [-kernels `list`]"

// runVM runs a static program (a test binary, under go test -exec) in a
// QEMU guest of each kernel.
func runVM(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "fentrygen vm", vmSynopsis)
	var names []string
	for _, s := range vmboot.AllSeries() {
		names = append(names, s.Name)
	}
	kernels := fs.String("kernels", strings.Join(names, ","), "the kernel `series` to boot, in order, comma-separated")
	timeout := fs.Duration("timeout", 0, "the most one boot may take (default: the program's -test.timeout plus a minute, else $FENTRYGEN_VM_TIMEOUT or 5m)")
	listOnly := fs.Bool("list", false, "list the kernels (downloading any missing) and run nothing")
	modules := fs.String("modules", "", "comma-separated kernel `modules` each guest loads, from its kernel's packages, before the program starts")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *listOnly {
		if fs.NArg() > 0 {
			return usagef("vm: -list runs nothing, yet a program is named")
		}
		list, err := vmboot.SelectSeries(*kernels)
		if err != nil {
			return usagef("vm: -kernels: %v", err)
		}
		return listKernels(stdout, list)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usagef("vm: name the program to run (go test -exec 'go tool fentrygen vm' runs test binaries)")
	}
	list, err := vmboot.SelectSeries(*kernels)
	if err != nil {
		return usagef("vm: -kernels: %v", err)
	}
	var mods []string
	if *modules != "" {
		for _, m := range strings.Split(*modules, ",") {
			if !fbtf.IsModuleName(m) {
				return usagef("vm: -modules %q: want comma-separated module names", *modules)
			}
			mods = append(mods, m)
		}
	}
	prog, progArgs := fs.Arg(0), fs.Args()[1:]
	if _, err := os.Stat(prog); err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	initBin, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	if err := vmboot.CheckStatic(self, initBin); err != nil {
		return fmt.Errorf("vm: fentrygen is the guest's /init, so it must be static: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	limit := *timeout
	if limit == 0 {
		limit = testTimeout(progArgs)
	}
	outcomes, err := vmboot.RunExec(stdout, vmboot.Exec{
		Path:    prog,
		Args:    progArgs,
		Series:  list,
		Dir:     wd,
		Init:    initBin,
		Timeout: limit,
		Modules: mods,
	})
	if err != nil {
		if strings.Contains(err.Error(), "qemu-system-x86_64 not found") {
			return fmt.Errorf("vm: %w (install it: apt-get install qemu-system-x86)", err)
		}
		return fmt.Errorf("vm: %w", err)
	}
	fmt.Fprintf(stdout, "=== fentrygen vm: %s\n", vmboot.Summarize(outcomes))
	for _, o := range outcomes {
		if !o.OK() {
			return errReported
		}
	}
	return nil
}

// testTimeout is a test binary's -test.timeout plus a minute, so that the
// test, not the boot's limit, reports a hang with its stacks; 0 (the
// harness' default) when it has none.
func testTimeout(args []string) time.Duration {
	for _, a := range args {
		v, ok := strings.CutPrefix(a, "-test.timeout=")
		if !ok {
			v, ok = strings.CutPrefix(a, "--test.timeout=")
		}
		if d, err := time.ParseDuration(v); ok && err == nil && d > 0 {
			return d + time.Minute
		}
	}
	return 0
}

// listKernels prints each series, how it is resolved and the package it
// resolves to today.
func listKernels(w io.Writer, list []vmboot.Series) error {
	kernels, err := vmboot.KernelsOf(list)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	for i, k := range kernels {
		from := "the host's apt sources"
		if len(list[i].Suites) > 0 {
			from = "Debian " + strings.Join(list[i].Suites, ", ")
		}
		fmt.Fprintf(w, "%-5s %-40s %s in %s\n", k.Name, k.Package, list[i].Meta, from)
	}
	return nil
}
