package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/gen"
)

// PinnedBTF is the file name of a package's pinned BTF snapshot.
const PinnedBTF = "fentrygen.btf"

func runGenerate(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "fentrygen", "fentrygen [-btf `file`] [-btf-module `[name=]file`]... [-o `file`] [-tags `a,b`] [-depth `n`] [-debug-model] [`packages`]\n       fentrygen describe|new|snapshot|check|vm ... (-h for each)")
	btfFile := fs.String("btf", "", "read BTF from `file` (default: the package's "+PinnedBTF+", then "+fbtf.KernelPath+", then the embedded snapshot)")
	modules := moduleFiles{}
	fs.Var(modules, "btf-module", moduleUsage)
	output := fs.String("o", gen.DefaultOutput, "generated `file` name inside each package")
	tags := fs.String("tags", "", "comma-separated build `tags`")
	depth := fs.Int("depth", 0, fmt.Sprintf("give structs within `n` pointer hops of an argument accessors for all their members, used or not (0 to %d; an annotation's depth= wins)", gen.MaxDepth))
	debug := fs.Bool("debug-model", false, "print the model as JSON to stdout instead of writing files")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := checkOutputName(*output); err != nil {
		return err
	}
	if *depth < 0 || *depth > gen.MaxDepth {
		return usagef("-depth %d: want 0 to %d", *depth, gen.MaxDepth)
	}
	tagList, err := parseTags(*tags)
	if err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	inputs, diags, err := loadPackages(cwd, fs.Args(), tagList, *output)
	if err != nil {
		return err
	}
	failed := report(stderr, cwd, diags)
	// Every package is generated in memory first: nothing is written unless
	// all of them succeed.
	var outputs []generated
	for _, in := range inputs {
		out, err := generate(stdout, stderr, cwd, in, *btfFile, modules, *depth, *debug)
		if err != nil {
			if !errors.Is(err, errReported) {
				fmt.Fprintf(stderr, "fentrygen: %v\n", err)
			}
			failed = true
			continue
		}
		if out != nil {
			outputs = append(outputs, *out)
		}
	}
	if failed {
		return errReported
	}
	for _, out := range outputs {
		if err := writeAtomic(out.path, out.code); err != nil {
			return err
		}
	}
	return nil
}

// generated is one package's file, ready to write.
type generated struct {
	path string
	code []byte
}

// checkOutputName refuses -o values that are not a plain Go file name in
// the package's folder.
func checkOutputName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return usagef("-o %q: want a file name such as %s", name, gen.DefaultOutput)
	case strings.ContainsRune(name, filepath.Separator) || strings.ContainsRune(name, '/'):
		return usagef("-o takes a file name, not a path: the file goes into each package's folder")
	case !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go"):
		return usagef("-o %q: want a .go file name that is not a test file", name)
	}
	return nil
}

// parseTags splits -tags like the go command: comma-separated build tags,
// each a word of letters, digits, underscores and dots.
func parseTags(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, tag := range strings.Split(s, ",") {
		if tag == "" || strings.Trim(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != "" {
			return nil, usagef("-tags %q: want comma-separated tags of letters, digits, _ and .", s)
		}
		out = append(out, tag)
	}
	return out, nil
}

// report prints diagnostics and tells whether any is an error.
func report(stderr io.Writer, cwd string, ds gen.Diagnostics) bool {
	for _, d := range ds {
		fmt.Fprintf(stderr, "fentrygen: %s\n", d.Relative(cwd))
	}
	return ds.HasErrors()
}

// generate builds one package's file; nil with a nil error means there is
// nothing to write (no probes, -debug-model). Diagnostics are printed; an
// error means the package failed.
func generate(stdout, stderr io.Writer, cwd string, in *gen.Input, btfFile string, modules moduleFiles, depth int, debug bool) (*generated, error) {
	src, err := loadBTF(btfFile, filepath.Join(filepath.Dir(in.Output), PinnedBTF), modules)
	if err != nil {
		return nil, err
	}
	opts := gen.Options{Depth: depth, BTFName: src.from, Modules: src.mods}
	if src.from == fbtf.KernelPath {
		opts.Inject = errorInjection()
	}
	model, diags := gen.Build(in, src.spec, opts)
	if report(stderr, cwd, diags) || model == nil {
		return nil, errReported
	}
	if debug {
		_, err := stdout.Write(model.JSON())
		return nil, err
	}
	if len(model.Probes) == 0 && len(model.Views) == 0 && len(model.Maps) == 0 {
		fmt.Fprintf(stderr, "fentrygen: package %s has no //fentry:, //fexit:, //fmod_ret:, //fentrygen:event or map declarations: nothing written\n", in.PkgPath)
		return nil, nil
	}
	code, err := gen.Emit(model)
	if err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(in.Output); err == nil && !isGenerated(old) {
		rel, _ := filepath.Rel(cwd, in.Output)
		return nil, fmt.Errorf("%s exists and its first line is not %q: not overwriting it; move it or pass -o", rel, "// "+gen.Header)
	}
	return &generated{path: in.Output, code: code}, nil
}

// isGenerated reports whether data's first line is fentrygen's header.
func isGenerated(data []byte) bool {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimRight(first, "\r")) == "// "+gen.Header
}
