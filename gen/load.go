package gen

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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

const generatedImports = "github.com/fentrygen/fentrygen/runtime github.com/cilium/ebpf"

// Load finds the packages, parses their files and type-checks them. Only
// the packages' own files are type-checked; their imports come from export
// data (the go command's build cache). Problems with the packages
// themselves (no Go files, syntax errors) are returned as Diagnostics.
func Load(cfg Config) ([]*Input, Diagnostics, error) {
	if cfg.Output == "" {
		cfg.Output = DefaultOutput
	}
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	var flags []string
	if len(cfg.Tags) > 0 {
		flags = []string{"-tags=" + strings.Join(cfg.Tags, ",")}
	}
	list, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedModule | packages.NeedTypesSizes,
		Dir:  cfg.Dir, Env: cfg.Env, BuildFlags: flags,
	}, patterns...)
	if err != nil {
		return nil, nil, err
	}
	var ds diags
	fset := token.NewFileSet()
	var inputs []*Input
	var empty []string
	imports := map[string]bool{}
	for _, p := range list {
		if len(p.GoFiles) == 0 {
			// A folder of tests only matches ./... like any other: it has
			// nothing to generate.
			msg := fmt.Sprintf("package %s has no Go files", p.PkgPath)
			if len(p.Errors) > 0 {
				msg = p.Errors[0].Msg
			}
			empty = append(empty, msg)
			continue
		}
		for _, e := range p.Errors {
			ds.list = append(ds.list, Diagnostic{Pos: parsePos(e.Pos), Message: e.Msg})
		}
		in := &Input{PkgPath: p.PkgPath, Name: p.Name, Output: filepath.Join(filepath.Dir(p.GoFiles[0]), cfg.Output), Fset: fset}
		for _, name := range p.GoFiles {
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
					ds.errorf(fset.Position(spec.Pos()), "package %s uses cgo: probe packages are pure Go", p.PkgPath)
				}
				imports[path] = true
			}
		}
		in.conf = types.Config{Sizes: p.TypesSizes, Error: func(error) {}}
		if in.conf.Sizes == nil {
			in.conf.Sizes = types.SizesFor("gc", build.Default.GOARCH)
		}
		if p.Module != nil && p.Module.GoVersion != "" {
			in.conf.GoVersion = "go" + p.Module.GoVersion
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
	importer, err := exportData(cfg, flags, slices.Sorted(func(yield func(string) bool) {
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

// importerFunc adapts a function to types.Importer.
type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// exportData loads the type information of paths from export data.
func exportData(cfg Config, flags []string, paths []string) (types.Importer, error) {
	pkgs, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedTypes,
		Dir:  cfg.Dir, Env: cfg.Env, BuildFlags: flags,
	}, paths...)
	if err != nil {
		return nil, err
	}
	byPath := map[string]*types.Package{}
	problems := map[string]string{}
	for _, p := range pkgs {
		if p.Types != nil && !p.IllTyped {
			byPath[p.PkgPath] = p.Types
		}
		if len(p.Errors) > 0 {
			problems[p.PkgPath] = p.Errors[0].Msg
		}
	}
	return importerFunc(func(path string) (*types.Package, error) {
		if path == "unsafe" {
			return types.Unsafe, nil
		}
		if p, ok := byPath[path]; ok {
			return p, nil
		}
		if msg, ok := problems[path]; ok {
			return nil, fmt.Errorf("%s", msg)
		}
		return nil, fmt.Errorf("package %s not loaded", path)
	}), nil
}

// check type-checks files as the package.
func (in *Input) check(files []*ast.File) (*types.Package, *types.Info) {
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	pkg, _ := in.conf.Check(in.PkgPath, in.Fset, files, info)
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

// parsePos parses go/packages' "file:line:col" positions; file may itself
// contain colons, so numbers are taken from the right.
func parsePos(s string) token.Position {
	var pos token.Position
	if s == "" || s == "-" {
		return pos
	}
	pos.Filename = s
	var nums []int
	for len(nums) < 2 {
		i := strings.LastIndexByte(pos.Filename, ':')
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(pos.Filename[i+1:])
		if err != nil {
			break
		}
		nums = append([]int{n}, nums...)
		pos.Filename = pos.Filename[:i]
	}
	if len(nums) > 0 {
		pos.Line = nums[0]
	}
	if len(nums) > 1 {
		pos.Column = nums[1]
	}
	return pos
}
