package gen

import (
	"go/ast"
	"go/token"
	"path/filepath"
	"sort"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// Options tune [Build].
type Options struct {
	// Depth gives every struct within Depth pointer hops of an argument an
	// accessor with all its members, used or not (for completion in an
	// editor); an annotation's depth= wins. 0 generates only what the stubs
	// use.
	Depth int
	// Inject is the error-injection list of the kernel the probes target,
	// or nil when unknown (fmod_ret on other than security_* then warns).
	Inject fbtf.ErrorInjection
	// BTFName says where spec came from, for -debug-model.
	BTFName string
	// Modules has the BTF of kernel modules, built on spec, for probes on
	// their functions; nil: only the modules a snapshot spec keeps.
	Modules *fbtf.Modules
}

// Build resolves the annotations of in against spec into a model, in
// stages: scan the files, resolve probes, views and maps, decide and check
// every generated name, then settle the accessors on what the stubs use by
// type-checking the package with the generated file. It returns
// diagnostics (errors and warnings) sorted by position; the model is nil
// when there are errors. A model that is returned compiles with the
// package.
func Build(in *Input, spec *cbtf.Spec, opts Options) (*Model, Diagnostics) {
	mods := opts.Modules
	if mods == nil {
		mods = fbtf.NewModules(spec, nil)
	}
	b := &builder{
		in:       in,
		spec:     spec,
		mods:     mods,
		opts:     opts,
		acc:      newAccessors(spec),
		viewUsed: map[string]bool{},
		model:    &Model{Package: in.Name, PkgPath: in.PkgPath, BTF: opts.BTFName},
	}
	f := b.scan()
	b.constraint(f)
	for _, p := range f.probes {
		b.probe(p)
	}
	b.views(f)
	for _, m := range f.maps {
		b.mapDecl(m)
	}
	before := len(b.diags.list)
	b.checkNames()
	// With errors, what did resolve is still type-checked with the
	// package, so its own mistakes are reported in the same run; the
	// names the failed declarations would have generated are missing, and
	// that is not reported again. Clashing names would only add noise.
	if len(b.diags.list) == before {
		b.settle(b.failedNames(f))
	}
	ds := b.diags.list.Sorted()
	if ds.HasErrors() {
		return nil, ds
	}
	return b.model, ds
}

type builder struct {
	in    *Input
	spec  *cbtf.Spec
	mods  *fbtf.Modules
	opts  Options
	diags diags
	model *Model
	acc   *accessors
	// viewUsed are the view methods the package calls ("XView.SetPid").
	viewUsed map[string]bool
}

func (b *builder) pos(p token.Pos) token.Position { return b.in.Fset.Position(p) }

// failedNames are the names that declarations with errors would have
// generated: when there are errors, "undefined" for them is no news.
func (b *builder) failedNames(f *found) map[string]bool {
	if !b.diags.list.HasErrors() {
		return nil
	}
	out := map[string]bool{}
	for _, fn := range f.stubs {
		ctx := ContextName(fn.Name.Name)
		out[ctx], out[ctx+"Program"], out[ctx+"Spec"] = true, true, true
		out[ctx+"Entry"], out[ctx+"Exit"] = true, true
	}
	for _, e := range f.events {
		out[e.spec.Name.Name+"View"], out["New"+e.spec.Name.Name+"View"] = true, true
	}
	for _, file := range b.in.Files {
		ast.Inspect(file, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.HasSuffix(id.Name, "View") {
				out[id.Name], out["New"+id.Name] = true, true
			}
			return true
		})
	}
	for _, name := range []string{"Programs", "Load", "Objects"} {
		out[name] = true
	}
	return out
}

// constraint carries the build constraint of the files that declare
// probes, events and maps into the generated file. Files without one may
// sit beside them; two different constraints cannot share one generated
// file.
func (b *builder) constraint(f *found) {
	var files []string
	for file, c := range f.constraints {
		if c != "" {
			files = append(files, file)
		}
	}
	sort.Strings(files)
	for _, file := range files {
		c := f.constraints[file]
		if b.model.Constraint == "" {
			b.model.Constraint = c
			continue
		}
		if c != b.model.Constraint {
			b.diags.errorf(token.Position{Filename: file, Line: 1, Column: 1}, "build constraint %q differs from %s's %q: the declarations share one generated file, so their files need one constraint", c, filepath.Base(files[0]), b.model.Constraint)
		}
	}
}
