package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmboot"
)

func runDescribe(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "describe", "fentrygen describe [-btf `file`] [-btf-module `[name=]file`]... [-kernels test] [`module`:]`function`")
	btfFile := fs.String("btf", "", "read BTF from `file` (raw BTF or ELF) instead of the running kernel")
	modules := moduleFiles{}
	fs.Var(modules, "btf-module", moduleUsage)
	kernels := fs.String("kernels", "", "\"test\": also say how the function is traced on each test kernel (Debian's, unpacked offline)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("describe takes exactly one function name")
	}
	if *kernels != "" && *kernels != "test" {
		return usagef("-kernels %q: want test", *kernels)
	}
	src, err := loadBTF(*btfFile, "", modules)
	if err != nil {
		return err
	}
	inject := errorInjection()
	if src.from != fbtf.KernelPath {
		// The list describes the running kernel, not this BTF.
		inject = nil
	}
	mod, fn := fbtf.SplitTarget(fs.Arg(0))
	if mod != "" && !fbtf.IsModuleName(mod) {
		return usagef("describe %s: want FUNCTION or MODULE:FUNCTION", fs.Arg(0))
	}
	v := src.mods.Validate(mod, fn, inject)
	if v.Func == nil || !v.Traceable() {
		hint := ""
		if errors.Is(v.Err, fbtf.ErrNoModule) {
			hint = fmt.Sprintf(" (load it here, modprobe %s, or give its BTF: -btf-module %s=FILE)", mod, mod)
		}
		return fmt.Errorf("%s cannot be traced: %w%s", fs.Arg(0), v.Err, hint)
	}
	writeDescription(stdout, src.from, v, fbtf.Fsession(src.spec), fbtf.TracingMulti(src.spec))
	if *kernels == "test" {
		ks, err := vmboot.Kernels()
		if err != nil {
			return fmt.Errorf("test kernels: %w", err)
		}
		fmt.Fprintln(stdout, "  on the test kernels:")
		for _, k := range ks {
			spec, err := k.BTF()
			if err != nil {
				return fmt.Errorf("test kernel %s: %w", k.Name, err)
			}
			fmt.Fprintf(stdout, "    %-5s %s\n", k.Name, kernelSummary(fbtf.Validate(spec, fs.Arg(0), nil), fbtf.Fsession(spec), fbtf.TracingMulti(spec)))
		}
	}
	return nil
}

// kernelSummary is one line of what a kernel allows on a function: the
// kinds, how an fsession gets there, and how a probe on it and other
// functions.
func kernelSummary(v *fbtf.Verdict, noFsession, noMulti error) string {
	if !v.Traceable() {
		return "cannot be traced: " + v.Err.Error()
	}
	var kinds []string
	for _, k := range []struct {
		name string
		err  error
	}{{"fentry", v.Fentry}, {"fexit", v.Fexit}, {"fmod_ret", v.FmodRet}} {
		if k.err == nil {
			kinds = append(kinds, k.name)
		}
	}
	return strings.Join(kinds, ", ") + "; fsession: " + fsessionLine(v, noFsession) + "; multi: " + multiLine(v, noMulti)
}

// multiLine says how a probe on this function and others (//fentry:a,b,
// //fentry:vfs_*) attaches to it: on one tracing multi-link, or with a
// link of its own.
func multiLine(v *fbtf.Verdict, noMulti error) string {
	switch {
	case v.Fentry != nil:
		return "no: " + v.Fentry.Error()
	case noMulti == nil:
		return "one tracing multi-link for all the functions (BPF_TRACE_FENTRY_MULTI, BPF_TRACE_FEXIT_MULTI)"
	}
	return fmt.Sprintf("one trampoline link per function (%v)", noMulti)
}

// fsessionLine says how an fsession reaches a function: natively, as a
// pair, or not.
func fsessionLine(v *fbtf.Verdict, noFsession error) string {
	switch {
	case v.Fexit != nil:
		return "no: " + v.Fexit.Error()
	case noFsession == nil:
		return "allowed: native (one BPF_TRACE_FSESSION program, one link)"
	}
	return fmt.Sprintf("allowed: as an fentry+fexit pair sharing a per-call map (%v)", noFsession)
}

// writeDescription writes what describe says of a function; noFsession and
// noMulti are why the kernel of that BTF has no fsession and no tracing
// multi-links (nil when it has).
func writeDescription(w io.Writer, from string, v *fbtf.Verdict, noFsession, noMulti error) {
	fn := v.Func
	fmt.Fprintf(w, "%s\n", fn.Prototype())
	fmt.Fprintf(w, "  BTF: %s; linkage %s; %d ctx slot(s)\n", from, fn.Linkage, fn.NumSlots)
	if v.Module != "" {
		fmt.Fprintf(w, "  module:   %s (annotate //fentry:%s:%s; the module must be loaded where the probe loads)\n", v.Module, v.Module, fn.Name)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  arg\tname\tctx slot\ttype\tkind")
	for _, p := range fn.Params {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", p.Index, p.Name, slots(p), p.CType, kind(p))
	}
	if fn.Return.Kind == fbtf.KindVoid {
		fmt.Fprintf(tw, "  ret\t\tctx[%d]\tvoid\t\n", fn.Return.Slot)
	} else {
		fmt.Fprintf(tw, "  ret\t\tctx[%d]\t%s\t%s\n", fn.Return.Slot, fn.Return.CType, kind(fn.Return))
	}
	tw.Flush()
	for _, k := range []struct {
		name string
		err  error
	}{{"fentry", v.Fentry}, {"fexit", v.Fexit}, {"fmod_ret", v.FmodRet}} {
		if k.err == nil {
			fmt.Fprintf(w, "  %-9s allowed\n", k.name+":")
		} else {
			fmt.Fprintf(w, "  %-9s no: %v\n", k.name+":", k.err)
		}
	}
	fmt.Fprintf(w, "  %-9s %s\n", "fsession:", fsessionLine(v, noFsession))
	fmt.Fprintf(w, "  %-9s %s\n", "multi:", multiLine(v, noMulti))
	var saves []string
	for _, s := range fbtf.SuggestSaves(fn) {
		saves = append(saves, fmt.Sprintf("%s->r%d", s.Arg, s.Reg))
	}
	if len(saves) > 0 {
		fmt.Fprintf(w, "  saves:    %s (callee-saved r6-r9 survive helper calls)\n", strings.Join(saves, ", "))
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "  note:     %s\n", n)
	}
}

func slots(p fbtf.Value) string {
	if p.Slots == 1 {
		return fmt.Sprintf("ctx[%d]", p.Slot)
	}
	return fmt.Sprintf("ctx[%d..%d]", p.Slot, p.Slot+p.Slots-1)
}

func kind(v fbtf.Value) string {
	switch v.Kind {
	case fbtf.KindInt:
		sign := "unsigned"
		if v.Signed {
			sign = "signed"
		}
		return fmt.Sprintf("%s %d-byte int", sign, v.Size)
	case fbtf.KindAggregate:
		return fmt.Sprintf("%d-byte aggregate by value", v.Size)
	}
	return v.Kind.String()
}
