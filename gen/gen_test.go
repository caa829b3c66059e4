package gen_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/tools/txtar"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/internal/testmod"
	"github.com/fentrygen/fentrygen/load"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const output = "fentrygen_gen.go"

// snapshot is the committed BTF every golden case is generated against,
// unless its "btf" section names another file of testdata/btf.
func snapshot(t *testing.T) *cbtf.Spec { return snapshotNamed(t, "vmlinux-min.btf") }

func snapshotNamed(t *testing.T, name string) *cbtf.Spec {
	t.Helper()
	spec, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", name))
	require.NoError(t, err)
	return spec
}

func module(t *testing.T, files map[string][]byte) string { return testmod.Write(t, files) }

// generate runs load -> build -> emit on dir like the CLI does, returning
// the code and the diagnostics relative to dir.
func generate(t *testing.T, dir string, spec *cbtf.Spec, tags ...string) ([]byte, []string) {
	t.Helper()
	inputs, loadDiags, err := load.Packages(load.Config{Dir: dir, Tags: tags})
	require.NoError(t, err)
	var lines []string
	for _, d := range loadDiags {
		lines = append(lines, d.Relative(dir))
	}
	require.Len(t, inputs, 1, lines)
	model, diags := gen.Build(inputs[0], spec, gen.Options{BTFName: "snapshot"})
	for _, d := range diags {
		lines = append(lines, d.Relative(dir))
	}
	if model == nil {
		return nil, lines
	}
	code, err := gen.Emit(model)
	require.NoError(t, err)
	return code, lines
}

// TestGolden generates each testdata/golden case: a txtar of input files,
// optional "tags" (build tags, comma-separated), optional "btf" (a file of
// testdata/btf to generate against instead of vmlinux-min.btf:
// modules-min.btf keeps two kernel modules, vfs.btf the vfs_* functions)
// and the expected fentrygen_gen.go with the "warnings" it gave, or the
// "errors" when nothing is generated.
func TestGolden(t *testing.T) {
	spec := snapshot(t)
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "golden", "*.txtar"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			require.NoError(t, err)
			inputs := map[string][]byte{}
			sections := map[string]*txtar.File{}
			for i, f := range ar.Files {
				switch f.Name {
				case output, "errors", "warnings", "tags", "btf":
					sections[f.Name] = &ar.Files[i]
				default:
					inputs[f.Name] = f.Data
				}
			}
			var tags []string
			if f := sections["tags"]; f != nil {
				tags = strings.Split(strings.TrimSpace(string(f.Data)), ",")
			}
			spec := spec
			if f := sections["btf"]; f != nil {
				spec = snapshotNamed(t, strings.TrimSpace(string(f.Data)))
			}
			dir := module(t, inputs)
			code, diags := generate(t, dir, spec, tags...)
			gotDiags := strings.Join(diags, "\n")
			if gotDiags != "" {
				gotDiags += "\n"
			}
			if *update {
				if code == nil {
					setFile(ar, "errors", []byte(gotDiags))
				} else {
					setFile(ar, output, code)
					if gotDiags != "" || sections["warnings"] != nil {
						setFile(ar, "warnings", []byte(gotDiags))
					}
				}
				require.NoError(t, os.WriteFile(path, txtar.Format(ar), 0o644))
				return
			}
			if want := sections["errors"]; want != nil {
				assert.Nil(t, code, "a package with errors generates nothing")
				assert.Equal(t, string(want.Data), gotDiags)
				return
			}
			want := sections[output]
			require.NotNil(t, want, "%s has no %s section: run go test ./gen -update", path, output)
			wantWarnings := ""
			if w := sections["warnings"]; w != nil {
				wantWarnings = string(w.Data)
			}
			assert.Equal(t, wantWarnings, gotDiags, "warnings")
			assert.Equal(t, string(want.Data), string(code), "generated code differs from %s (go test ./gen -update rewrites it)", path)

			// Deterministic: a second run gives the same bytes.
			again, _ := generate(t, dir, spec, tags...)
			assert.Equal(t, code, again)
		})
	}
}

func setFile(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}

// TestGeneratedCodeBuilds writes each golden output next to its input and
// runs go build and go vet on the result, then shows a misspelled member
// reported at generate time with a near miss, and failing to compile
// against a file generated before the mistake.
func TestGeneratedCodeBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds whole modules")
	}
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "golden", "*.txtar"))
	require.NoError(t, err)
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		require.NoError(t, err)
		files := map[string][]byte{}
		var tags string
		for _, f := range ar.Files {
			switch f.Name {
			case "warnings", "btf":
			case "tags":
				tags = strings.TrimSpace(string(f.Data))
			default:
				files[f.Name] = f.Data
			}
		}
		if _, ok := files[output]; !ok {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			dir := module(t, files)
			goCmd(t, dir, "build", "-tags="+tags, "./...")
			goCmd(t, dir, "vet", "-tags="+tags, "./...")
			if tags != "" {
				// Without the tags the generated file drops out with the
				// probes: it carries their constraint.
				goCmd(t, dir, "build", "./...")
			}
		})
	}
	t.Run("misspelled member", func(t *testing.T) {
		ar, err := txtar.ParseFile(filepath.Join("..", "testdata", "golden", "connect.txtar"))
		require.NoError(t, err)
		files := map[string][]byte{}
		for _, f := range ar.Files {
			files[f.Name] = f.Data
		}
		files["probes.go"] = bytes.Replace(files["probes.go"], []byte("SkcReuse()"), []byte("SkcReuze()"), 1)
		dir := module(t, files)
		code, diags := generate(t, dir, snapshot(t))
		assert.Nil(t, code)
		assert.Equal(t, []string{"probes.go:23:29: SockCommon (struct sock_common) has no member SkcReuze (did you mean SkcReuse?)"}, diags)

		cmd := exec.Command("go", "build", "./...")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "a member that does not exist must not compile")
		assert.Contains(t, string(out), "SkcReuze undefined (type SockCommon has no field or method SkcReuze")
	})
}

func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
}

// TestExampleUpToDate regenerates example/ in memory, from each package's
// pinned BTF, and compares it with what is committed.
func TestExampleUpToDate(t *testing.T) {
	inputs, loadDiags, err := load.Packages(load.Config{Dir: filepath.Join("..", "example"), Patterns: []string{"./..."}})
	require.NoError(t, err)
	require.Empty(t, loadDiags)
	require.NotEmpty(t, inputs)
	var checked []string
	for _, in := range inputs {
		pinned := filepath.Join(filepath.Dir(in.Output), "fentrygen.btf")
		spec, err := fbtf.LoadFile(pinned)
		if os.IsNotExist(errors.Unwrap(err)) || errors.Is(err, os.ErrNotExist) {
			// Only packages without probes may go without pinned BTF.
			spec, err = fbtf.Embedded()
			require.NoError(t, err)
			model, _ := gen.Build(in, spec, gen.Options{})
			require.True(t, model == nil || len(model.Probes) == 0, "%s has probes but no pinned BTF", in.PkgPath)
			continue
		}
		require.NoError(t, err)
		model, diags := gen.Build(in, spec, gen.Options{})
		require.Nil(t, diagErrors(diags), in.PkgPath)
		require.NotNil(t, model)
		code, err := gen.Emit(model)
		require.NoError(t, err)
		committed, err := os.ReadFile(in.Output)
		require.NoError(t, err, "%s: generated file missing: run go generate ./example/...", in.PkgPath)
		assert.Equal(t, string(committed), string(code), "%s is stale: run go generate ./example/...", in.Output)
		checked = append(checked, in.PkgPath)
	}
	sort.Strings(checked)
	t.Logf("up to date: %v", checked)
}

func diagErrors(ds gen.Diagnostics) error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}

// TestTooManySlots needs a function no kernel has: a synthetic BTF.
func TestTooManySlots(t *testing.T) {
	pair := &cbtf.Struct{Name: "pair", Size: 16, Members: []cbtf.Member{
		{Name: "a", Type: &cbtf.Int{Name: "u64", Size: 8}}, {Name: "b", Type: &cbtf.Int{Name: "u64", Size: 8}, Offset: 64},
	}}
	var params []cbtf.FuncParam
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		params = append(params, cbtf.FuncParam{Name: n, Type: pair})
	}
	b, err := cbtf.NewBuilder([]cbtf.Type{&cbtf.Func{Name: "wide", Type: &cbtf.FuncProto{Return: &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}, Params: params}}}, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	dir := module(t, map[string][]byte{"probes.go": []byte("package probes\n\n//fentry:wide\nfunc onWide(p *OnWide) {}\n")})
	code, diags := generate(t, dir, spec)
	assert.Nil(t, code)
	assert.Equal(t, []string{"probes.go:3:10: fentry: function wide: arguments need more than 12 ctx slots (14)"}, diags)
}

// TestModelPrints checks -debug-model's JSON names what was resolved.
func TestModelPrints(t *testing.T) {
	dir := module(t, map[string][]byte{"probes.go": []byte("package probes\n\n//fexit:tcp_v4_connect args=sk ret\nfunc onExit(p *OnExit) {}\n")})
	inputs, _, err := load.Packages(load.Config{Dir: dir})
	require.NoError(t, err)
	model, diags := gen.Build(inputs[0], snapshot(t), gen.Options{BTFName: "snap"})
	require.Empty(t, diags)
	js := string(model.JSON())
	for _, want := range []string{`"target": "tcp_v4_connect"`, `"c_name": "sk"`, `"go_type": "int32"`, `"num_slots": 3`, `"btf": "snap"`, `"kind": "fexit"`, `"kind": "ptr"`} {
		assert.Contains(t, js, want)
	}
	assert.Regexp(t, regexp.MustCompile(`"go_type": "Sock"`), js)
	assert.Regexp(t, regexp.MustCompile(`"pos": ".*/probes.go:3:1"`), js)
}

// dentrySpec has f(struct dentry *d) where dentry's union lists d_name and
// __d_name in the given order, as 6.18 lists __d_name first.
func dentrySpec(t *testing.T, internalFirst bool) *cbtf.Spec {
	t.Helper()
	u32 := &cbtf.Int{Name: "u32", Size: 4}
	qstr := &cbtf.Struct{Name: "qstr", Size: 8, Members: []cbtf.Member{{Name: "hash", Type: u32}, {Name: "len", Type: u32, Offset: 32}}}
	names := []cbtf.Member{{Name: "d_name", Type: qstr}, {Name: "__d_name", Type: qstr}}
	if internalFirst {
		names[0], names[1] = names[1], names[0]
	}
	dentry := &cbtf.Struct{Name: "dentry", Size: 8, Members: []cbtf.Member{{Type: &cbtf.Union{Size: 8, Members: names}}}}
	fn := &cbtf.Func{Name: "f", Type: &cbtf.FuncProto{Return: &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed},
		Params: []cbtf.FuncParam{{Name: "d", Type: &cbtf.Pointer{Target: dentry}}}}}
	b, err := cbtf.NewBuilder([]cbtf.Type{fn}, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	return spec
}

// TestAccessorNamesIgnoreOrder: the member a user knows (d_name) gets the
// plain Go name whatever the BTF order; the internal one (__d_name) gets
// one underscore per leading underscore.
func TestAccessorNamesIgnoreOrder(t *testing.T) {
	dir := module(t, map[string][]byte{"probes.go": []byte(`package probes

//fentry:f
func onF(p *OnF) {
	_ = p.D.DName().Len()
	_ = p.D.DName__().Hash()
}
`)})
	var codes [][]byte
	for _, internalFirst := range []bool{false, true} {
		code, diags := generate(t, dir, dentrySpec(t, internalFirst))
		require.Empty(t, diags)
		codes = append(codes, code)
	}
	assert.Equal(t, string(codes[0]), string(codes[1]), "one file whatever the order")
	assert.Contains(t, string(codes[0]), "func (s Dentry) DName() Qstr {\n\treturn Qstr{ptr: s.ptr.Member(\"d_name\")}")
	assert.Contains(t, string(codes[0]), "func (s Dentry) DName__() Qstr {\n\treturn Qstr{ptr: s.ptr.Member(\"__d_name\")}")
}
