package load

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/tools/go/packages"
)

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
