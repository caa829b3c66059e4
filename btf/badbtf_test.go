package btf_test

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/gen"
)

var update = flag.Bool("update", false, "rewrite the hand-built files under testdata/badbtf")

var badDir = filepath.Join("..", "testdata", "badbtf")

// The hostile names of testdata/badbtf/hostile-names.btf: each would be Go
// code if it reached generated code as an identifier.
const (
	HostileStruct = "S struct{}\nfunc init() { panic(\"hostile struct name\") }\ntype T"
	HostileMember = "x()\nfunc init() { panic(\"hostile member name\") }\nfunc y"
	HostileParam  = "p int) {}\nfunc init() { panic(\"hostile parameter name\") }\nfunc f(q"
)

// handBuilt are the files of testdata/badbtf written with cilium/ebpf's
// Builder: shapes no compiler emits. go test ./btf -run TestBadBTF -update
// rewrites them.
var handBuilt = map[string]func() []cbtf.Type{
	"self-anonymous-member.btf": func() []cbtf.Type {
		return []cbtf.Type{takes("takes_self_anon", selfAnon())}
	},
	"self-anonymous-qualified.btf": func() []cbtf.Type {
		return []cbtf.Type{takes("takes_self_qual", selfAnonQualified())}
	},
	"array-of-itself.btf": func() []cbtf.Type {
		s := &cbtf.Struct{Name: "array_self", Size: 4}
		s.Members = []cbtf.Member{{Name: "n", Type: u32}, {Name: "arr", Type: &cbtf.Array{Index: u32, Type: s, Nelems: 2}, Offset: 32}}
		return []cbtf.Type{takes("takes_array_self", s)}
	},
	"array-element-is-itself.btf": func() []cbtf.Type {
		s := &cbtf.Struct{Name: "array_holder", Size: 8, Members: []cbtf.Member{{Name: "n", Type: u32}, {Name: "arr", Type: selfArray(), Offset: 32}}}
		return []cbtf.Type{takes("takes_array_holder", s)}
	},
	"pointer-loop.btf": func() []cbtf.Type {
		p := &cbtf.Pointer{}
		p.Target = &cbtf.Const{Type: p}
		s := &cbtf.Struct{Name: "ptr_holder", Size: 8, Members: []cbtf.Member{{Name: "p", Type: p}}}
		return []cbtf.Type{
			&cbtf.Func{Name: "takes_ptr_loop", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "p", Type: p}}}},
			takes("takes_ptr_holder", s),
		}
	},
	"typedef-loop.btf": func() []cbtf.Type {
		td := &cbtf.Typedef{Name: "loop_t"}
		td.Type = td
		return []cbtf.Type{&cbtf.Func{Name: "takes_loop", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "x", Type: td}}}}}
	},
	"anonymous-lattice.btf": func() []cbtf.Type {
		var level cbtf.Type = &cbtf.Struct{Name: "bottom", Size: 4, Members: []cbtf.Member{{Name: "x", Type: u32}}}
		for range 40 {
			level = &cbtf.Struct{Size: 4, Members: []cbtf.Member{{Type: level}, {Type: level}}}
		}
		return []cbtf.Type{takes("takes_lattice", &cbtf.Struct{Name: "top", Size: 4, Members: []cbtf.Member{{Type: level}}})}
	},
	"gonames-collide.btf": func() []cbtf.Type {
		s := &cbtf.Struct{Name: "collide", Size: 4 * 4000}
		for i, name := range collidingNames(4000) {
			s.Members = append(s.Members, cbtf.Member{Name: name, Type: u32, Offset: cbtf.Bits(32 * i)})
		}
		return []cbtf.Type{takes("takes_collide", s)}
	},
	"hostile-names.btf": func() []cbtf.Type {
		named := &cbtf.Struct{Name: HostileStruct, Size: 4, Members: []cbtf.Member{{Name: "x", Type: u32}}}
		member := &cbtf.Struct{Name: "hostile_member", Size: 8, Members: []cbtf.Member{{Name: "ok", Type: u32}, {Name: HostileMember, Type: u32, Offset: 32}}}
		plain := &cbtf.Struct{Name: "plain", Size: 4, Members: []cbtf.Member{{Name: "x", Type: u32}}}
		return []cbtf.Type{
			takes("hostile_struct", named),
			takes("hostile_member", member),
			&cbtf.Func{Name: "hostile_param", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: HostileParam, Type: i32}}}},
			takes("plain", plain),
		}
	},
}

// takes is a function int name(struct s *p).
func takes(name string, s cbtf.Type) *cbtf.Func {
	return &cbtf.Func{Name: name, Linkage: cbtf.GlobalFunc, Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "p", Type: &cbtf.Pointer{Target: s}}}}}
}

// collidingNames are n distinct C identifiers that gen turns into one Go
// name, ABCDEFGHIJ: a_b_c_d_e_f_g_h_i_j with letters in either case and
// one or two underscores between them.
func collidingNames(n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		var b strings.Builder
		for p := range 10 {
			if p > 0 {
				b.WriteString(strings.Repeat("_", 1+i>>(9+p)&1))
			}
			c := byte('a' + p)
			if i>>p&1 == 1 {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
		}
		out = append(out, b.String())
	}
	return out
}

// badCase is one file of testdata/badbtf.
type badCase struct {
	file string
	// load is LoadFile's exact error after "FILE: ".
	load string
	// from and seed say which mutant of which snapshot TestMutate made the
	// file from; the snapshot's probes and member paths are used on it.
	// Hand-built files have none, and probes instead.
	from  string
	seed  uint64
	probe string
}

// badCases are every file under testdata/badbtf. Before the fixes that
// came with them, each crashed (a fatal stack overflow unless said) or
// hung fentrygen:
var badCases = []badCase{
	// VisibleMembers, findMember, unknownMember: endless recursion.
	{file: "self-anonymous-member.btf", probe: "//fentry:takes_self_anon depth=2",
		load: "invalid BTF: struct self_anon [4] contains itself: struct self_anon [4] member #1 -> struct self_anon [4]: type refers to itself"},
	{file: "self-anonymous-qualified.btf", probe: "//fentry:takes_self_qual depth=2",
		load: "invalid BTF: struct self_qual [7] contains itself: struct self_qual [7] member #1 -> anonymous union [6] member #0 -> const [5] -> typedef self_qual_t [4] -> struct self_qual [7]: type refers to itself"},
	// Never crashed (a named member is not flattened), but no compiler
	// emits it: refused.
	{file: "array-of-itself.btf", probe: "//fentry:takes_array_self depth=2",
		load: "invalid BTF: struct array_self [5] contains itself: struct array_self [5] member arr -> array [4] element -> struct array_self [5]: type refers to itself"},
	// CType: endless recursion.
	{file: "array-element-is-itself.btf", probe: "//fentry:takes_array_holder depth=2",
		load: "invalid BTF: array [4] contains itself: array [4] element -> array [4]: type refers to itself"},
	{file: "pointer-loop.btf", probe: "//fentry:takes_ptr_holder depth=2",
		load: "invalid BTF: pointer [5] refers to itself through no struct or union: pointer [5] -> const [4] -> pointer [5]: type refers to itself"},
	// Never crashed (cilium/ebpf stops after 32 typedefs), but refused.
	{file: "typedef-loop.btf", probe: "//fentry:takes_loop",
		load: "invalid BTF: typedef loop_t [3] contains itself: typedef loop_t [3] -> typedef loop_t [3]: type refers to itself"},
	// VisibleMembers: 2^40 paths to one member, a hang.
	{file: "anonymous-lattice.btf", probe: "//fentry:takes_lattice",
		load: "invalid BTF: struct top [45] has more than 65536 members, counting those of its anonymous members"},
	{file: "hostile-names.btf", probe: "//fentry:hostile_struct\n//fentry:hostile_member\n//fentry:plain",
		load: "invalid BTF: struct [7]: name \"S struct{}\\nfunc init() { panic(\\\"hostile struct name\\\") }\\ntype T\" is not a C identifier"},
	// Well-formed: 4000 members whose C names differ and whose Go names
	// do not.
	{file: "gonames-collide.btf", probe: "//fentry:takes_collide depth=1"},

	// Mutants TestMutate made of the snapshots.
	// CType: a pointer to itself.
	{file: "mutant-pointer-to-itself.btf", from: "argwatch", seed: 176,
		load: "invalid BTF: pointer [51] refers to itself through no struct or union: pointer [51] -> pointer [51]: type refers to itself"},
	// findMember: an anonymous union that is its own container.
	{file: "mutant-anonymous-member-of-itself.btf", from: "argwatch", seed: 711,
		load: "invalid BTF: struct qspinlock [16] contains itself: struct qspinlock [16] member #0 -> struct qspinlock [16]: type refers to itself"},
	// VisibleMembers: an anonymous union inside itself.
	{file: "mutant-anonymous-union-of-itself.btf", from: "vmlinux-min", seed: 925,
		load: "invalid BTF: anonymous union [654] contains itself: anonymous union [654] member #1 -> anonymous union [654]: type refers to itself"},
	// Snapshot: a struct whose member name does not decode leaves types
	// behind that refer to nothing; cilium/ebpf's Builder panicked on
	// them ("don't know how to walk Type <nil>", exit 2).
	{file: "mutant-half-decoded.btf", from: "argwatch", seed: 1953,
		load: "invalid BTF: inflate type: struct address_space (id 124): can't get name for member 5: offset 2049 is not the beginning of a string"},
}

// TestBadBTF runs every file of testdata/badbtf through the loader (which
// must refuse it with the exact message) and, unchecked, through every
// query and the generator: none may crash or hang.
func TestBadBTF(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(badDir, "*.btf"))
	require.NoError(t, err)
	var files []string
	for _, p := range paths {
		files = append(files, filepath.Base(p))
	}
	var listed []string
	for _, c := range badCases {
		listed = append(listed, c.file)
	}
	slices.Sort(listed)
	assert.Equal(t, files, listed, "every file of %s has a case, every case a file", badDir)

	for name, types := range handBuilt {
		blob := marshal(t, types()...)
		path := filepath.Join(badDir, name)
		if *update {
			require.NoError(t, os.WriteFile(path, blob, 0o644))
			continue
		}
		old, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(old, blob), "%s differs from what handBuilt makes: go test ./btf -run TestBadBTF -update", path)
	}

	corpora := map[string]*corpus{}
	for _, c := range loadCorpora(t) {
		for _, name := range strings.Split(c.name, "=") {
			corpora[name] = c
		}
	}
	inputs := probeInputs(t)
	for _, c := range badCases {
		t.Run(strings.TrimSuffix(c.file, ".btf"), func(t *testing.T) {
			path := filepath.Join(badDir, c.file)
			_, err := fbtf.LoadFile(path)
			if c.load == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, path+": "+c.load)
			}

			blob, err := os.ReadFile(path)
			require.NoError(t, err)
			var co *corpus
			if c.from != "" {
				for name, corpus := range corpora {
					if strings.Contains(name, c.from) {
						co = corpus
					}
				}
				require.NotNil(t, co, "no snapshot %s", c.from)
			} else {
				co = fileCorpus(t, blob, inputs[badPackage(c.file)])
			}
			o := pipeline(c.file, blob, co)
			assert.Empty(t, o.panic)
			assert.True(t, o.parsed, "everything ran")
		})
	}
}

// fileCorpus is what the pipeline asks of a hand-built file: its
// functions, member paths from its structs, and its probe package.
func fileCorpus(t *testing.T, blob []byte, in *gen.Input) *corpus {
	t.Helper()
	require.NotNil(t, in)
	spec, err := cbtf.LoadSpecFromReader(bytes.NewReader(blob))
	require.NoError(t, err)
	c := &corpus{name: "file", blob: blob, inputs: []*gen.Input{in}}
	for typ, err := range spec.All() {
		require.NoError(t, err)
		switch v := typ.(type) {
		case *cbtf.Func:
			c.funcs = append(c.funcs, v.Name)
		case *cbtf.Struct, *cbtf.Union:
			c.paths = append(c.paths, memberPaths(typ)...)
		}
	}
	return c
}

// badPackage is the import path of the probe package of a hand-built file.
func badPackage(file string) string {
	return "example.com/probes/bad/" + strings.NewReplacer("-", "", ".btf", "").Replace(file)
}

// badProbeFiles are the probe packages of the hand-built files.
func badProbeFiles() map[string][]byte {
	out := map[string][]byte{}
	for _, c := range badCases {
		if c.probe == "" {
			continue
		}
		pkg := strings.TrimPrefix(badPackage(c.file), "example.com/probes/")
		var src strings.Builder
		src.WriteString("package " + filepath.Base(pkg) + "\n")
		for i, line := range strings.Split(c.probe, "\n") {
			stub := "on" + string(rune('A'+i))
			src.WriteString("\n" + line + "\nfunc " + stub + "(p *" + gen.ContextName(stub) + ") {}\n")
		}
		out[pkg+"/probes.go"] = []byte(src.String())
	}
	return out
}

// TestHostileNames: names that are not C identifiers never leave this
// package as names, and LoadFile refuses files that hold them.
func TestHostileNames(t *testing.T) {
	blob, err := os.ReadFile(filepath.Join(badDir, "hostile-names.btf"))
	require.NoError(t, err)
	spec, err := cbtf.LoadSpecFromReader(bytes.NewReader(blob))
	require.NoError(t, err, "unchecked")

	_, err = fbtf.ResolveFunc(spec, "hostile_param")
	assert.ErrorIs(t, err, fbtf.ErrBadName)
	assert.EqualError(t, err, `function hostile_param argument 0: name "p int) {}\nfunc init() { panic(\"hostile parameter name\") }\nfunc f(q" is not a C identifier`)

	member, err := fbtf.LookupComposite(spec, "hostile_member")
	require.NoError(t, err)
	assert.Equal(t, []string{"ok"}, names(fbtf.VisibleMembers(member)), "no code can name the other one")
	_, err = fbtf.WalkMember(member, HostileMember)
	assert.ErrorContains(t, err, "malformed path element")

	fn, err := fbtf.ResolveFunc(spec, "hostile_struct")
	require.NoError(t, err)
	assert.Equal(t, `int hostile_struct(struct "S struct{}\nfunc init() { panic(\"hostile struct name\") }\ntype T" *p)`, fn.Prototype(), "quoted: no newline")
	assert.NotContains(t, fn.Prototype(), "\n")

	_, err = fbtf.ResolveFunc(spec, "hostil_struct")
	assert.EqualError(t, err, "function hostil_struct: not found in BTF (did you mean hostile_struct?)")
	_, err = fbtf.LookupComposite(spec, "S")
	assert.EqualError(t, err, "struct S: not found in BTF", "not a suggestion")

}

// TestHostileNamesGenerated: the generator, given the hostile BTF
// unchecked, makes no identifier of its names (every generated identifier
// is decided in the model), and the code it writes declares nothing but
// what it should.
func TestHostileNamesGenerated(t *testing.T) {
	blob, err := os.ReadFile(filepath.Join(badDir, "hostile-names.btf"))
	require.NoError(t, err)
	spec, err := cbtf.LoadSpecFromReader(bytes.NewReader(blob))
	require.NoError(t, err)
	in := probeInputs(t)[badPackage("hostile-names.btf")]
	model, diags := gen.Build(in, spec, gen.Options{})
	if model == nil {
		// Refusing the names is fine too, in words that do not carry them.
		require.True(t, diags.HasErrors())
		for _, d := range diags {
			assert.NotContains(t, d.Message, "\n")
		}
		return
	}
	var idents []string
	for _, p := range model.Probes {
		args := slices.Clone(p.Args)
		if p.Ret != nil {
			args = append(args, p.Ret)
		}
		for _, a := range args {
			idents = append(idents, a.GoName, a.GoType)
		}
	}
	for _, s := range model.Accessors {
		idents = append(idents, s.GoName)
		for _, m := range s.Members {
			idents = append(idents, m.GoName, m.GoType)
		}
	}
	for _, id := range idents {
		assert.True(t, token.IsIdentifier(id), "%q is not a Go identifier", id)
	}
	code, err := gen.Emit(model)
	require.NoError(t, err)
	f, err := parser.ParseFile(token.NewFileSet(), "gen.go", code, 0)
	require.NoError(t, err)
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok {
			assert.NotEqual(t, "init", fn.Name.Name)
		}
	}
}
