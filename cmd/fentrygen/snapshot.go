package main

import (
	"fmt"
	"io"
	"strings"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

func runSnapshot(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "snapshot", "fentrygen snapshot [-btf `file`] [-btf-module `[name=]file`]... [-types `a,b`] [-tracepoints `a,b`] [-depth `n`] -o `out.btf` [[`module`:]`function`...]")
	btfFile := fs.String("btf", "", "read BTF from `file` instead of the running kernel")
	modules := moduleFiles{}
	fs.Var(modules, "btf-module", moduleUsage)
	out := fs.String("o", "", "write the snapshot to `file`")
	types := fs.String("types", "", "comma-separated struct or union `names` to keep besides the functions' types (MODULE:NAME for a module's)")
	tracepoints := fs.String("tracepoints", "", "comma-separated `tracepoints` (for tp_btf probes) whose prototypes to keep")
	depth := fs.Int("depth", 2, "pointer hops whose target is kept; further pointers become void * (0: all)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 && *tracepoints == "" {
		fs.Usage()
		return usagef("snapshot needs -o and at least one function or tracepoint")
	}
	src, err := loadBTF(*btfFile, "", modules)
	if err != nil {
		return err
	}
	opts := fbtf.SnapshotOptions{Funcs: fs.Args(), Depth: *depth, Modules: src.mods}
	if *types != "" {
		opts.Types = strings.Split(*types, ",")
	}
	if *tracepoints != "" {
		opts.Tracepoints = strings.Split(*tracepoints, ",")
	}
	blob, err := fbtf.Snapshot(src.spec, opts)
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, blob); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes from %s\n", *out, len(blob), src.from)
	return nil
}
