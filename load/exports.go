package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/token"
	"go/types"
	"os"
	"os/exec"

	"golang.org/x/tools/go/gcexportdata"
)

// exports says where the export data of packages is, or why a package has
// none.
type exports struct {
	Files    map[string]string `json:"files"`
	Problems map[string]string `json:"problems,omitempty"`
}

// exportData returns an importer of the types of paths (and of what they
// import) from export data: the go command's answer, or the cache's when
// nothing it depended on has changed.
func exportData(cfg Config, fset *token.FileSet, paths []string) (types.Importer, error) {
	c := openCache(cfg, paths)
	ex, ok := c.lookup()
	if !ok {
		listing, err := goList(cfg, paths)
		if err != nil {
			return nil, err
		}
		ex = listing.exports(paths)
		c.store(listing, ex)
	}
	imported := map[string]*types.Package{}
	return importerFunc(func(path string) (*types.Package, error) {
		if path == "unsafe" {
			return types.Unsafe, nil
		}
		if p, ok := imported[path]; ok && p.Complete() {
			return p, nil
		}
		file, ok := ex.Files[path]
		if !ok {
			if msg, ok := ex.Problems[path]; ok {
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

// listedPackage is what `go list -deps -export` says of one package.
type listedPackage struct {
	ImportPath, Dir, Export string
	Standard                bool
	EmbedFiles              []string
	Module                  *struct{ Dir, GoMod string }
	Error                   *struct{ Err string }
}

// listing is the go command's answer for some packages and everything
// they import.
type listing []listedPackage

// goList asks the go command for the export data of paths and their
// dependencies (building what is not in its cache).
func goList(cfg Config, paths []string) (listing, error) {
	args := append(append([]string{"list", "-e", "-deps", "-export", "-json=ImportPath,Dir,Export,Standard,EmbedFiles,Module,Error"}, tagFlags(cfg.Tags)...), paths...)
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = cfg.Dir, cfg.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export: %w: %s", err, stderr.String())
	}
	var l listing
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list -export: %w", err)
		}
		l = append(l, p)
	}
	return l, nil
}

// exports picks paths' export files out of the listing: their export data
// holds the types of everything they import.
func (l listing) exports(paths []string) exports {
	ex := exports{Files: map[string]string{}, Problems: map[string]string{}}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	for _, p := range l {
		switch {
		case !want[p.ImportPath]:
		case p.Error != nil:
			ex.Problems[p.ImportPath] = p.Error.Err
		case p.Export == "":
			ex.Problems[p.ImportPath] = "no export data"
		default:
			ex.Files[p.ImportPath] = p.Export
		}
	}
	return ex
}

// ok reports whether every package in the listing was built.
func (l listing) ok() bool {
	for _, p := range l {
		if p.Error != nil || p.Export == "" && p.ImportPath != "unsafe" {
			return false
		}
	}
	return true
}
