// Package load finds the packages fentrygen generates for and reads them:
// their own files parsed and type-checked, their imports' types from the
// go command's export data. It is the generator's only reader of files;
// gen works on what it returns.
package load

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fentrygen/fentrygen/gen"
)

// Config says which packages to load and how.
type Config struct {
	// Dir is the folder patterns are relative to.
	Dir string
	// Patterns are package patterns; none means ".".
	Patterns []string
	// Tags are build tags.
	Tags []string
	// Output is the generated file's name inside each package (default
	// gen.DefaultOutput).
	Output string
	// Env is the go command's environment (nil: the process's).
	Env []string
	// CacheDir keeps what the go command said about the imports' export
	// data, so that a later load with nothing changed need not ask it
	// again ("": no cache).
	CacheDir string
}

// listed is a package found by pattern: its folder, import path, name,
// Go files for the build context, and module's go version.
type listed struct {
	dir, path, name string
	files           []string
	goVersion       string
}

// Packages finds the packages, parses their files and type-checks them.
// Only the packages' own files are type-checked; their imports come from
// export data (the go command's build cache). Folder patterns (".", "./x",
// "./...") are resolved without the go command; import paths through it.
// Problems with the packages themselves (no Go files, syntax errors, cgo)
// are returned as diagnostics; the error is for everything else.
func Packages(cfg Config) ([]*gen.Input, gen.Diagnostics, error) {
	if cfg.Output == "" {
		cfg.Output = gen.DefaultOutput
	}
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	var ds gen.Diagnostics
	errorf := func(pos token.Position, format string, args ...any) {
		ds = append(ds, gen.Diagnostic{Pos: pos, Message: fmt.Sprintf(format, args...)})
	}
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
	// Folders without Go files matter only when nothing else matched.
	if len(found) == 0 {
		for _, msg := range empty {
			errorf(token.Position{}, "%s", msg)
		}
		if len(ds) == 0 {
			errorf(token.Position{}, "no packages match %s", strings.Join(patterns, " "))
		}
		return nil, ds, nil
	}
	fset := token.NewFileSet()
	parsed := make([][]*ast.File, len(found))
	imports := map[string]bool{}
	for _, path := range gen.RuntimeImports {
		imports[path] = true
	}
	for i, p := range found {
		output := filepath.Join(p.dir, cfg.Output)
		for _, name := range p.files {
			if filepath.Clean(name) == filepath.Clean(output) {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
			if list, ok := err.(scanner.ErrorList); ok {
				for _, e := range list {
					errorf(e.Pos, "%s", e.Msg)
				}
				continue
			} else if err != nil {
				return nil, nil, err
			}
			parsed[i] = append(parsed[i], f)
			for _, spec := range f.Imports {
				path, err := strconv.Unquote(spec.Path.Value)
				if err != nil {
					continue
				}
				if path == "C" {
					errorf(fset.Position(spec.Pos()), "package %s uses cgo: probe packages are pure Go", p.path)
				}
				imports[path] = true
			}
		}
	}
	delete(imports, "unsafe")
	delete(imports, "C")
	importer, err := exportData(cfg, fset, slices.Sorted(maps.Keys(imports)))
	if err != nil {
		return nil, nil, err
	}
	sizes := types.SizesFor("gc", buildContext(cfg).GOARCH)
	inputs := make([]*gen.Input, len(found))
	for i, p := range found {
		conf := types.Config{Importer: importer, Sizes: sizes}
		if p.goVersion != "" {
			conf.GoVersion = "go" + p.goVersion
		}
		inputs[i] = gen.NewInput(p.path, p.name, filepath.Join(p.dir, cfg.Output), fset, parsed[i], conf)
	}
	return inputs, ds.Sorted(), nil
}
