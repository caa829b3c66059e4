package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/tools/go/gcexportdata"
	"golang.org/x/tools/go/packages"
)

// DefaultOutput is the generated file's name in each package.
const DefaultOutput = "fentrygen_gen.go"

// Config says which packages to load and how.
type Config struct {
	// Dir is the folder patterns are relative to.
	Dir string
	// Patterns are package patterns; none means ".".
	Patterns []string
	// Tags are build tags.
	Tags []string
	// Output is the generated file's name inside each package (default
	// DefaultOutput).
	Output string
	// Env is the go command's environment (nil: the process's).
	Env []string
}

// Input is one loaded package: its own files parsed and type-checked
// without the generated file (stale or missing, it never hides or causes
// an error), its imports read from export data.
type Input struct {
	PkgPath string
	Name    string
	// Output is the absolute path of the generated file.
	Output string
	Fset   *token.FileSet
	// Files are the package's files, the generated one left out.
	Files []*ast.File
	// Types and Info are the type check of Files; errors in it are
	// expected (the generated names are missing) and not reported from
	// here: the check with the generated file reports what is real.
	Types *types.Package
	Info  *types.Info
	conf  types.Config
}

// generatedImports are what the generated file imports besides the
// package's own imports.
const generatedImports = "github.com/fentrygen/fentrygen/runtime github.com/cilium/ebpf"

// listed is a package found by pattern: its folder, import path, name,
// Go files for the build context, and module's go version.
type listed struct {
	dir, path, name string
	files           []string
	goVersion       string
}

// Load finds the packages, parses their files and type-checks them. Only
// the packages' own files are type-checked; their imports come from export
// data (the go command's build cache), read with one `go list -export`.
// Folder patterns (".", "./x", "./...") are resolved without the go
// command; import paths through it. Problems with the packages themselves
// (no Go files, syntax errors) are returned as Diagnostics.
func Load(cfg Config) ([]*Input, Diagnostics, error) {
	if cfg.Output == "" {
		cfg.Output = DefaultOutput
	}
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	var ds diags
	var found []listed
	var empty []string
	for _, pattern := range patterns {
		pkgs, noGo, err := find(cfg, pattern)
		if err != nil {
			return nil, nil, err
		}
		found = append(found, pkgs...)
		empty = append(empty, noGo...)
	}
	fset := token.NewFileSet()
	var inputs []*Input
	imports := map[string]bool{}
	for _, p := range found {
		in := &Input{PkgPath: p.path, Name: p.name, Output: filepath.Join(p.dir, cfg.Output), Fset: fset}
		for _, name := range p.files {
			if filepath.Clean(name) == filepath.Clean(in.Output) {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				ds.add(err)
				continue
			}
			in.Files = append(in.Files, f)
			for _, spec := range f.Imports {
				path, err := strconv.Unquote(spec.Path.Value)
				if err != nil {
					continue
				}
				if path == "C" {
					ds.errorf(fset.Position(spec.Pos()), "package %s uses cgo: probe packages are pure Go", p.path)
				}
				imports[path] = true
			}
		}
		in.conf = types.Config{Sizes: types.SizesFor("gc", buildContext(cfg).GOARCH), Error: func(error) {}}
		if p.goVersion != "" {
			in.conf.GoVersion = "go" + p.goVersion
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		for _, msg := range empty {
			ds.errorf(token.Position{}, "%s", msg)
		}
		if len(ds.list) == 0 {
			ds.errorf(token.Position{}, "no packages match %s", strings.Join(patterns, " "))
		}
		return nil, ds.list.sorted(), nil
	}
	for _, path := range strings.Fields(generatedImports) {
		imports[path] = true
	}
	delete(imports, "unsafe")
	delete(imports, "C")
	importer, err := exportData(cfg, fset, slices.Sorted(func(yield func(string) bool) {
		for p := range imports {
			if !yield(p) {
				return
			}
		}
	}))
	if err != nil {
		return nil, nil, err
	}
	for _, in := range inputs {
		in.conf.Importer = importer
		in.Types, in.Info = in.check(in.Files)
	}
	return inputs, ds.list.sorted(), nil
}

// buildContext is go/build's context for cfg: its tags, its environment's
// GOOS and GOARCH.
func buildContext(cfg Config) build.Context {
	ctxt := build.Default
	ctxt.BuildTags = cfg.Tags
	ctxt.CgoEnabled = false
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "GOOS="); ok {
			ctxt.GOOS = v
		}
		if v, ok := strings.CutPrefix(kv, "GOARCH="); ok {
			ctxt.GOARCH = v
		}
	}
	return ctxt
}

// find resolves one pattern: a folder ("." "./x" "/abs"), a folder tree
// ("./..."), or anything else through `go list`. It also returns why
// folders matched had nothing to generate from (tests only).
func find(cfg Config, pattern string) ([]listed, []string, error) {
	base, tree := strings.CutSuffix(pattern, "/...")
	if pattern == "..." {
		base, tree = ".", true
	}
	if !build.IsLocalImport(base) && !filepath.IsAbs(base) {
		return findByGoList(cfg, pattern)
	}
	root := base
	if !filepath.IsAbs(root) {
		root = filepath.Join(cfg.Dir, root)
	}
	if !tree {
		p, noGo, err := findDir(cfg, root)
		if p == nil {
			return nil, noGo, err
		}
		return []listed{*p}, nil, err
	}
	var out []listed
	var empty []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		p, noGo, err := findDir(cfg, path)
		if err != nil {
			return err
		}
		if p != nil {
			out = append(out, *p)
		}
		empty = append(empty, noGo...)
		return nil
	})
	return out, empty, err
}

// findDir reads the package in dir with go/build: nil and a reason when
// it has no Go files for this build.
func findDir(cfg Config, dir string) (*listed, []string, error) {
	ctxt := buildContext(cfg)
	pkg, err := ctxt.ImportDir(dir, 0)
	var noGo *build.NoGoError
	switch {
	case errors.As(err, &noGo):
		return nil, []string{fmt.Sprintf("no Go files in %s (for this build)", dir)}, nil
	case err != nil:
		return nil, nil, err
	}
	mod, modDir, goVersion, err := module(dir)
	if err != nil {
		return nil, nil, err
	}
	rel, err := filepath.Rel(modDir, dir)
	if err != nil {
		return nil, nil, err
	}
	path := mod
	if rel != "." {
		path += "/" + filepath.ToSlash(rel)
	}
	p := &listed{dir: dir, path: path, name: pkg.Name, goVersion: goVersion}
	for _, f := range pkg.GoFiles {
		p.files = append(p.files, filepath.Join(dir, f))
	}
	return p, nil, nil
}

// module finds the go.mod above dir: the module's path, folder and go
// version.
func module(dir string) (path, root, goVersion string, err error) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			f, err := modfile.ParseLax(filepath.Join(d, "go.mod"), data, nil)
			if err != nil {
				return "", "", "", err
			}
			if f.Module == nil {
				return "", "", "", fmt.Errorf("%s: no module line", filepath.Join(d, "go.mod"))
			}
			if f.Go != nil {
				goVersion = f.Go.Version
			}
			return f.Module.Mod.Path, d, goVersion, nil
		}
		if filepath.Dir(d) == d {
			return "", "", "", fmt.Errorf("%s is not in a Go module (no go.mod above it)", dir)
		}
	}
}

// findByGoList resolves an import-path pattern with the go command.
func findByGoList(cfg Config, pattern string) ([]listed, []string, error) {
	pkgs, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedModule,
		Dir:  cfg.Dir, Env: cfg.Env, BuildFlags: tagFlags(cfg.Tags),
	}, pattern)
	if err != nil {
		return nil, nil, err
	}
	var out []listed
	var empty []string
	for _, p := range pkgs {
		if len(p.GoFiles) == 0 {
			msg := fmt.Sprintf("package %s has no Go files", p.PkgPath)
			if len(p.Errors) > 0 {
				msg = p.Errors[0].Msg
			}
			empty = append(empty, msg)
			continue
		}
		l := listed{dir: filepath.Dir(p.GoFiles[0]), path: p.PkgPath, name: p.Name, files: p.GoFiles}
		if p.Module != nil {
			l.goVersion = p.Module.GoVersion
		}
		out = append(out, l)
	}
	return out, empty, nil
}

func tagFlags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return []string{"-tags=" + strings.Join(tags, ",")}
}

// exportData loads the type information of paths from the export data the
// go command lists for them (building what is not in its cache).
func exportData(cfg Config, fset *token.FileSet, paths []string) (types.Importer, error) {
	args := append(append([]string{"list", "-e", "-export", "-json=ImportPath,Export,Error"}, tagFlags(cfg.Tags)...), paths...)
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = cfg.Dir, cfg.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export: %w: %s", err, stderr.String())
	}
	exports, problems := map[string]string{}, map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath, Export string
			Error              *struct{ Err string }
		}
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list -export: %w", err)
		}
		switch {
		case p.Error != nil:
			problems[p.ImportPath] = p.Error.Err
		case p.Export == "":
			problems[p.ImportPath] = "no export data"
		default:
			exports[p.ImportPath] = p.Export
		}
	}
	imported := map[string]*types.Package{}
	return importerFunc(func(path string) (*types.Package, error) {
		if path == "unsafe" {
			return types.Unsafe, nil
		}
		if p, ok := imported[path]; ok && p.Complete() {
			return p, nil
		}
		file, ok := exports[path]
		if !ok {
			if msg, ok := problems[path]; ok {
				return nil, fmt.Errorf("%s", msg)
			}
			return nil, fmt.Errorf("package %s not loaded", path)
		}
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, err := gcexportdata.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("export data of %s: %w", path, err)
		}
		return gcexportdata.Read(r, fset, imported, path)
	}), nil
}

// importerFunc adapts a function to types.Importer.
type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// check type-checks files as the package.
func (in *Input) check(files []*ast.File) (*types.Package, *types.Info) {
	pkg, info, _ := in.checkErrors(files)
	return pkg, info
}

// checkErrors type-checks files and returns the errors.
func (in *Input) checkErrors(files []*ast.File) (*types.Package, *types.Info, []types.Error) {
	var errs []types.Error
	conf := in.conf
	conf.Error = func(err error) {
		if te, ok := err.(types.Error); ok {
			errs = append(errs, te)
		}
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	pkg, _ := conf.Check(in.PkgPath, in.Fset, files, info)
	return pkg, info, errs
}
