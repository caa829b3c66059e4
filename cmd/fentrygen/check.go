package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/internal/vmboot"
	"github.com/fentrygen/fentrygen/runtime"
)

// btfFiles is the repeatable -btf flag.
type btfFiles []string

func (f *btfFiles) String() string     { return strings.Join(*f, ",") }
func (f *btfFiles) Set(v string) error { *f = append(*f, v); return nil }

// kernelColumn is one kernel's BTF that probes are checked against.
type kernelColumn struct {
	name   string
	spec   *cbtf.Spec
	kernel gen.Kernel
}

// checkRow is one probe's verdicts, by kernel, for -json.
type checkRow struct {
	Package string                 `json:"package"`
	Probe   string                 `json:"probe"`
	Kind    string                 `json:"kind"`
	Target  string                 `json:"target"`
	Module  string                 `json:"module,omitempty"`
	Kernels map[string]gen.Verdict `json:"kernels"`
}

func runCheck(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "check", "fentrygen check [-btf `file`]... [-kernels test] [-json] [-tags `a,b`] [`packages`]")
	var files btfFiles
	fs.Var(&files, "btf", "also check against the BTF in `file` (repeatable)")
	kernels := fs.String("kernels", "", "\"test\": also check against the BTF of the test kernels (Debian's, unpacked offline)")
	asJSON := fs.Bool("json", false, "print the verdicts as JSON")
	tags := fs.String("tags", "", "comma-separated build `tags`")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *kernels != "" && *kernels != "test" {
		return usagef("-kernels %q: want test", *kernels)
	}
	tagList, err := parseTags(*tags)
	if err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	shared, err := sharedColumns(files, *kernels == "test")
	if err != nil {
		return err
	}
	inputs, diags, err := loadPackages(cwd, fs.Args(), tagList, "")
	if err != nil {
		return err
	}
	failed := report(stderr, cwd, diags)
	var rows []checkRow
	for _, in := range inputs {
		src, err := loadBTF("", filepath.Join(filepath.Dir(in.Output), PinnedBTF), nil)
		if err != nil {
			fmt.Fprintf(stderr, "fentrygen: %v\n", err)
			failed = true
			continue
		}
		model, diags := gen.Build(in, src.spec, gen.Options{BTFName: src.from, Modules: src.mods})
		if report(stderr, cwd, diags) || model == nil {
			failed = true
			continue
		}
		columns := shared
		if src.from != fbtf.KernelPath && src.from != "embedded snapshot" {
			columns = append([]kernelColumn{{name: "pinned", spec: src.spec, kernel: gen.Kernel{Modules: src.mods}}}, shared...)
		}
		if len(model.Probes) == 0 {
			continue
		}
		for _, p := range model.Probes {
			row := checkRow{Package: in.PkgPath, Probe: p.Stub, Kind: p.Kind.String(), Target: p.Target, Module: p.Module, Kernels: map[string]gen.Verdict{}}
			for _, c := range columns {
				v := gen.Check(p, c.spec, c.kernel)
				row.Kernels[c.name] = v
				failed = failed || !v.OK()
			}
			rows = append(rows, row)
		}
		if !*asJSON {
			printCheck(stdout, in.PkgPath, columns, rows[len(rows)-len(model.Probes):])
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// sharedColumns are the kernels every package is checked against: the
// running kernel's BTF when readable, each -btf file, and the test kernels.
func sharedColumns(files []string, testKernels bool) ([]kernelColumn, error) {
	var out []kernelColumn
	if _, err := os.Stat(fbtf.KernelPath); err == nil {
		spec, err := fbtf.LoadKernel()
		if err != nil {
			return nil, err
		}
		out = append(out, kernelColumn{"host", spec, gen.Kernel{Release: runtime.KernelRelease(), Inject: errorInjection(), Modules: modulesOf(spec, fbtf.KernelPath, nil)}})
	}
	for _, f := range files {
		spec, err := fbtf.LoadFile(f)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(f)
		if name == "vmlinux" {
			// A copy of /sys/kernel/btf: the folder names the kernel.
			name = filepath.Base(filepath.Dir(f))
		}
		out = append(out, kernelColumn{name: name, spec: spec, kernel: gen.Kernel{Modules: modulesOf(spec, f, nil)}})
	}
	if testKernels {
		ks, err := vmboot.Kernels()
		if err != nil {
			return nil, fmt.Errorf("test kernels: %w", err)
		}
		for _, k := range ks {
			spec, err := k.BTF()
			if err != nil {
				return nil, fmt.Errorf("test kernel %s: %w", k.Name, err)
			}
			out = append(out, kernelColumn{k.Name, spec, gen.Kernel{Release: k.Name, Modules: fbtf.NewModules(spec, k.ModuleBTF()),
				NoModule: "no %s.ko in the kernel's packages: built in, or not built"}})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no kernel to check against: no " + fbtf.KernelPath + " here; pass -btf or -kernels test")
	}
	return out, nil
}

// mechanismCell is the table's word for how a probe loads on a kernel,
// where that depends on the kernel: " fsession" or " pair"; " multi" or
// " per-function".
func mechanismCell(v gen.Verdict) string {
	switch v.Mechanism {
	case runtime.SessionNative:
		return " fsession"
	case runtime.SessionPair:
		return " pair"
	case runtime.MultiLink:
		return " multi"
	case runtime.PerFunction:
		return " per-function"
	}
	return ""
}

// printCheck writes a probe by kernel table, then each problem and note.
func printCheck(w io.Writer, pkg string, columns []kernelColumn, rows []checkRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s", pkg)
	for _, c := range columns {
		fmt.Fprintf(tw, "\t%s", c.name)
	}
	fmt.Fprintln(tw)
	var details []string
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s (%s %s)", r.Probe, r.Kind, fbtf.JoinTarget(r.Module, r.Target))
		for _, c := range columns {
			v := r.Kernels[c.name]
			switch {
			case !v.OK():
				fmt.Fprintf(tw, "\tFAIL")
			case len(v.Notes) > 0:
				fmt.Fprintf(tw, "\tok*%s", mechanismCell(v))
			default:
				fmt.Fprintf(tw, "\tok%s", mechanismCell(v))
			}
			if v.OK() && v.Mechanism != 0 {
				why := ""
				if v.Why != "" {
					why = ": " + v.Why
				}
				details = append(details, fmt.Sprintf("  %s on %s: %s%s", r.Probe, c.name, v.Mechanism, why))
			}
			for _, p := range v.Problems {
				details = append(details, fmt.Sprintf("  %s on %s: %s", r.Probe, c.name, p))
			}
			for _, n := range v.Notes {
				details = append(details, fmt.Sprintf("  %s on %s: note: %s", r.Probe, c.name, n))
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, d := range details {
		fmt.Fprintln(w, d)
	}
}
