package gen

import (
	"fmt"
	"go/token"
	"path/filepath"
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

// Input is one loaded package and where its generated file goes.
type Input struct {
	Pkg *packages.Package
	// Output is the absolute path of the generated file.
	Output string
	// loadErrors are go/packages' errors, to be filtered once the names the
	// generated file declares are known.
	loadErrors []Diagnostic
}

const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
	packages.NeedTypes | packages.NeedTypesInfo | packages.NeedTypesSizes

// Load loads the packages. The generated file, stale or missing, is
// replaced by an empty one (an overlay: nothing on disk changes), so old
// output never hides or causes an error; what its absence causes is
// tolerated later by [Build].
func Load(cfg Config) ([]*Input, error) {
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
	// A light first pass finds the packages' folders and names.
	first, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedFiles, Dir: cfg.Dir, Env: cfg.Env, BuildFlags: flags}, patterns...)
	if err != nil {
		return nil, err
	}
	overlay := map[string][]byte{}
	outputs := map[string]string{}
	var firstErr error
	for _, p := range first {
		dir := packageDir(p)
		if dir == "" {
			// A folder of tests only (or nothing): nothing to generate.
			if firstErr == nil {
				firstErr = fmt.Errorf("package %s has no Go files", p.PkgPath)
				if len(p.Errors) > 0 {
					firstErr = fmt.Errorf("%s", p.Errors[0])
				}
			}
			continue
		}
		out := filepath.Join(dir, cfg.Output)
		overlay[out] = []byte("package " + p.Name + "\n")
		outputs[p.PkgPath] = out
	}
	if len(outputs) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("no packages match %s", strings.Join(patterns, " "))
		}
		return nil, firstErr
	}
	fset := token.NewFileSet()
	pkgs, err := packages.Load(&packages.Config{Mode: loadMode, Dir: cfg.Dir, Env: cfg.Env, BuildFlags: flags, Fset: fset, Overlay: overlay}, patterns...)
	if err != nil {
		return nil, err
	}
	var inputs []*Input
	for _, p := range pkgs {
		if _, ok := outputs[p.PkgPath]; !ok {
			continue
		}
		in := &Input{Pkg: p, Output: outputs[p.PkgPath]}
		for _, e := range p.Errors {
			if e.Kind == packages.ListError && compileOutput(e.Msg) {
				// The go command's compile of the package: the type
				// checker reports the same errors with positions.
				continue
			}
			in.loadErrors = append(in.loadErrors, Diagnostic{Pos: parsePos(e.Pos), Message: e.Msg})
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// compileOutput reports whether msg is the go command's compiler output:
// a "# package" line and positioned errors.
func compileOutput(msg string) bool {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# ") {
		return false
	}
	for _, l := range lines[1:] {
		if parsePos(strings.SplitN(l, ": ", 2)[0]).Line == 0 {
			return false
		}
	}
	return true
}

func packageDir(p *packages.Package) string {
	for _, files := range [][]string{p.GoFiles, p.CompiledGoFiles, p.OtherFiles} {
		if len(files) > 0 {
			return filepath.Dir(files[0])
		}
	}
	return ""
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
