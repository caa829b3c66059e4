package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

func runDescribe(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "describe", "fentrygen describe [-btf `file`] [-btf-module `[name=]file`]... [`module`:]`function`")
	btfFile := fs.String("btf", "", "read BTF from `file` (raw BTF or ELF) instead of the running kernel")
	modules := moduleFiles{}
	fs.Var(modules, "btf-module", moduleUsage)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("describe takes exactly one function name")
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
	writeDescription(stdout, src.from, v)
	return nil
}

func writeDescription(w io.Writer, from string, v *fbtf.Verdict) {
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
