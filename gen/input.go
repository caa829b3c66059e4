package gen

import (
	"go/ast"
	"go/token"
	"go/types"
)

// DefaultOutput is the generated file's name in each package.
const DefaultOutput = "fentrygen_gen.go"

// RuntimeImports are the packages the generated file imports whatever the
// package's own files import: a loader provides their types too.
var RuntimeImports = []string{"github.com/fentrygen/fentrygen/runtime", "github.com/cilium/ebpf"}

// Input is one package to generate for: its own files parsed and
// type-checked without the generated file (stale or missing, it never
// hides or causes an error), its imports from conf's importer.
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

// NewInput type-checks files as the package pkgPath, named name, whose
// generated file is output. conf gives the importer, sizes and Go version;
// its Error function is replaced.
func NewInput(pkgPath, name, output string, fset *token.FileSet, files []*ast.File, conf types.Config) *Input {
	in := &Input{PkgPath: pkgPath, Name: name, Output: output, Fset: fset, Files: files, conf: conf}
	in.Types, in.Info, _ = in.check(files)
	return in
}

// check type-checks files as the package and returns its errors.
func (in *Input) check(files []*ast.File) (*types.Package, *types.Info, []types.Error) {
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
