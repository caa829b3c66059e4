package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/templates"
)

func runNew(stdout, stderr io.Writer, args []string) error {
	fs := newFlags(stderr, "new", "fentrygen new [-kind fentry|fexit|fmod_ret|fsession] [-btf `file`] [-btf-module `[name=]file`]... [-o `file`] [`module`:]`function`")
	kind := fs.String("kind", "fentry", "probe `kind`: fentry, fexit, fmod_ret or fsession")
	btfFile := fs.String("btf", "", "read BTF from `file` instead of the running kernel")
	modules := moduleFiles{}
	fs.Var(modules, "btf-module", moduleUsage)
	out := fs.String("o", "", "write the stub to `file` (default FUNCTION_KIND.go)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("new takes exactly one function name")
	}
	if *kind != "fentry" && *kind != "fexit" && *kind != "fmod_ret" && *kind != "fsession" {
		return usagef("-kind %q: want fentry, fexit, fmod_ret or fsession", *kind)
	}
	mod, target := fbtf.SplitTarget(fs.Arg(0))
	if mod != "" && !fbtf.IsModuleName(mod) {
		return usagef("new %s: want FUNCTION or MODULE:FUNCTION", fs.Arg(0))
	}
	src, err := loadBTF(*btfFile, PinnedBTF, modules)
	if err != nil {
		return err
	}
	v := src.mods.Validate(mod, target, nil)
	if !v.Traceable() {
		return fmt.Errorf("%s cannot be traced: %w", fs.Arg(0), v.Err)
	}
	if *kind == "fmod_ret" && v.FmodRet != nil && !strings.Contains(v.FmodRet.Error(), "unknown") {
		return fmt.Errorf("fmod_ret on %s: %w", target, v.FmodRet)
	}
	if (*kind == "fexit" || *kind == "fsession") && v.Fexit != nil {
		return fmt.Errorf("%s on %s: %w", *kind, target, v.Fexit)
	}
	pkg, err := packageName(".")
	if err != nil {
		return err
	}
	stub := lowerCamel("on_" + strings.TrimPrefix(*kind, "f") + "_" + target)
	file := *out
	if file == "" {
		file = target + "_" + *kind + ".go"
	}
	if _, err := os.Stat(file); err == nil {
		return fmt.Errorf("%s exists: not overwriting it (pass -o)", file)
	}
	code, err := templates.Render(templates.Stub{
		Package: pkg, Kind: *kind, Target: fbtf.JoinTarget(v.Module, target), Prototype: v.Func.Prototype(),
		Stub: stub, Context: gen.ContextName(stub),
		Args: strings.Join(v.Func.ArgNames(), ","), Ret: *kind != "fentry" && v.Func.Return.Kind != fbtf.KindVoid,
	})
	if err != nil {
		return err
	}
	if err := writeAtomic(file, code); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s on %s (BTF: %s); run go generate next\n", file, *kind, target, src.from)
	return nil
}

// packageName is the package of the Go files in dir, $GOPACKAGE, or the
// folder's name.
func packageName(dir string) (string, error) {
	if p := os.Getenv("GOPACKAGE"); p != "" {
		return p, nil
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), m, nil, parser.PackageClauseOnly)
		if err == nil {
			return f.Name.Name, nil
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return -1
	}, strings.ToLower(filepath.Base(abs)))
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "probes"
	}
	return name, nil
}

// lowerCamel turns on_entry_tcp_v4_connect into onEntryTcpV4Connect.
func lowerCamel(s string) string {
	var b strings.Builder
	for i, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		if i == 0 {
			b.WriteString(part)
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
