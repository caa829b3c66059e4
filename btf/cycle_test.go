package btf_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// Types no C compiler emits but a corrupted or crafted BTF file holds: each
// used to send a walk into endless recursion (a fatal stack overflow) or
// exponential work.

var (
	u32 = &cbtf.Int{Name: "u32", Size: 4}
	i32 = &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
)

// selfAnon is struct self_anon { u32 a; <anonymous member of its own type> }.
func selfAnon() *cbtf.Struct {
	s := &cbtf.Struct{Name: "self_anon", Size: 8}
	s.Members = []cbtf.Member{{Name: "a", Type: u32}, {Type: s, Offset: 32}}
	return s
}

// selfAnonQualified reaches itself through an anonymous member whose type
// is a const typedef of an anonymous union holding it.
func selfAnonQualified() *cbtf.Struct {
	s := &cbtf.Struct{Name: "self_qual", Size: 8}
	u := &cbtf.Union{Size: 8}
	td := &cbtf.Typedef{Name: "self_qual_t", Type: s}
	u.Members = []cbtf.Member{{Type: &cbtf.Const{Type: td}}}
	s.Members = []cbtf.Member{{Name: "a", Type: u32}, {Type: u, Offset: 32}}
	return s
}

// selfArray is an array whose element type is the array itself.
func selfArray() *cbtf.Array {
	a := &cbtf.Array{Index: u32, Nelems: 2}
	a.Type = a
	return a
}

func TestSelfContainingStruct(t *testing.T) {
	for _, s := range []*cbtf.Struct{selfAnon(), selfAnonQualified()} {
		t.Run(s.Name, func(t *testing.T) {
			ms := fbtf.VisibleMembers(s)
			require.Len(t, ms, 1, "the member that contains its container is left out")
			assert.Equal(t, "a", ms[0].Name)

			m, err := fbtf.WalkMember(s, "a")
			require.NoError(t, err)
			assert.Equal(t, uint32(0), m.Last().Offset)

			_, err = fbtf.WalkMember(s, "b")
			assert.ErrorIs(t, err, fbtf.ErrUnknownMember)
			assert.EqualError(t, err, `struct `+s.Name+` has no such member "b" (did you mean a?)`)
			assert.Equal(t, "struct "+s.Name, fbtf.CType(s))
		})
	}
}

func TestSelfContainingArray(t *testing.T) {
	a := selfArray()
	assert.Equal(t, "<cycle>[2]", fbtf.CType(a))
	size, err := cbtf.Sizeof(a)
	assert.Error(t, err, "cilium/ebpf's Sizeof gives up after 32 steps: %d", size)

	// A struct member that is such an array, reached through a path.
	s := &cbtf.Struct{Name: "holder", Size: 8, Members: []cbtf.Member{{Name: "arr", Type: a}}}
	_, err = fbtf.WalkMember(s, "arr[1]")
	assert.EqualError(t, err, "arr[1]: type Array: exceeded type depth", "cilium/ebpf's Sizeof")
	_, err = fbtf.WalkMember(s, "arr.x")
	assert.EqualError(t, err, "arr.x: arr is <cycle>[2], not a struct or union")
	assert.Equal(t, []string{"arr"}, names(fbtf.VisibleMembers(s)))
}

func TestLoopsWithoutStruct(t *testing.T) {
	p := &cbtf.Pointer{}
	p.Target = p
	assert.Equal(t, "<cycle> *", fbtf.CType(p))

	c1 := &cbtf.Const{}
	c2 := &cbtf.Volatile{Type: c1}
	c1.Type = c2
	assert.Equal(t, "const volatile <cycle>", fbtf.CType(c1))

	td := &cbtf.Typedef{Name: "loop_t"}
	td.Type = td
	assert.Equal(t, "loop_t", fbtf.CType(td))

	var deep cbtf.Type = u32
	for range 40 {
		deep = &cbtf.Pointer{Target: deep}
	}
	assert.Equal(t, "<too deep> "+strings.Repeat("*", 32), fbtf.CType(deep))

	spec := build(t,
		&cbtf.Func{Name: "takes_loop", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "x", Type: td}}}},
		&cbtf.Func{Name: "takes_ptr_loop", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "p", Type: p}}}},
	)
	_, err := fbtf.ResolveFunc(spec, "takes_loop")
	assert.ErrorIs(t, err, fbtf.ErrCycle)
	assert.EqualError(t, err, "function takes_loop argument x: loop_t: type refers to itself (typedefs and qualifiers loop or nest deeper than 32)")
	_, err = fbtf.LookupComposite(spec, "loop_t")
	assert.ErrorIs(t, err, fbtf.ErrCycle)
	fn, err := fbtf.ResolveFunc(spec, "takes_ptr_loop")
	require.NoError(t, err, "a pointer is a pointer, whatever it points to")
	assert.Equal(t, "int takes_ptr_loop(<cycle> *p)", fn.Prototype())
}

// TestAnonymousLattice: 40 levels of structs, each with two anonymous
// members of the next, are 2^40 paths to the one named member at the
// bottom. The walks stop after looking at MaxMembers members.
func TestAnonymousLattice(t *testing.T) {
	var level cbtf.Type = &cbtf.Struct{Name: "bottom", Size: 4, Members: []cbtf.Member{{Name: "x", Type: u32}}}
	for range 40 {
		level = &cbtf.Struct{Size: 4, Members: []cbtf.Member{{Type: level}, {Type: level}}}
	}
	top := &cbtf.Struct{Name: "top", Size: 4, Members: []cbtf.Member{{Type: level}}}

	assert.Equal(t, []string{"x"}, names(fbtf.VisibleMembers(top)), "one name, listed once")
	m, err := fbtf.WalkMember(top, "x")
	require.NoError(t, err)
	assert.Equal(t, uint32(0), m.Last().Offset)
	_, err = fbtf.WalkMember(top, "y")
	assert.EqualError(t, err, `struct top has no such member "y" (did you mean x?)`)

	spec := build(t, top)
	err = fbtf.Check(spec)
	assert.ErrorContains(t, err, "struct top [1] has more than 65536 members, counting those of its anonymous members")
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name  string
		types []cbtf.Type
		err   string
	}{
		{"self anonymous", []cbtf.Type{selfAnon()},
			"struct self_anon [1] contains itself: struct self_anon [1] member #1 -> struct self_anon [1]: type refers to itself"},
		{"self qualified", []cbtf.Type{selfAnonQualified()},
			"struct self_qual [1] contains itself: struct self_qual [1] member #1 -> anonymous union [5] member #0 -> const [4] -> typedef self_qual_t [3] -> struct self_qual [1]: type refers to itself"},
		{"self array", []cbtf.Type{selfArray()},
			"array [1] contains itself: array [1] element -> array [1]: type refers to itself"},
		{"pointer loop", func() []cbtf.Type {
			p := &cbtf.Pointer{}
			p.Target = &cbtf.Const{Type: p}
			return []cbtf.Type{p}
		}(), "pointer [1] refers to itself through no struct or union: pointer [1] -> const [2] -> pointer [1]: type refers to itself"},
		{"list", func() []cbtf.Type {
			s := &cbtf.Struct{Name: "list_head", Size: 16}
			s.Members = []cbtf.Member{{Name: "next", Type: &cbtf.Pointer{Target: s}}, {Name: "prev", Type: &cbtf.Pointer{Target: s}, Offset: 64}}
			return []cbtf.Type{s}
		}(), ""},
		{"struct name", []cbtf.Type{&cbtf.Struct{Name: "a b", Size: 4, Members: []cbtf.Member{{Name: "x", Type: u32}}}},
			`struct [1]: name "a b" is not a C identifier`},
		{"member name", []cbtf.Type{&cbtf.Struct{Name: "s", Size: 4, Members: []cbtf.Member{{Name: "x;y", Type: u32}}}},
			`struct s [1] member 0: name "x;y" is not a C identifier`},
		{"parameter name", []cbtf.Type{&cbtf.Func{Name: "f", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "1st", Type: i32}}}}},
			`function prototype [3] parameter 0: name "1st" is not a C identifier`},
		{"typedef without name", []cbtf.Type{&cbtf.Typedef{Type: u32}}, `typedef [1]: no name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := fbtf.Check(build(t, c.types...))
			if c.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, c.err)
		})
	}
}

// TestSnapshotRefusesCycles: Snapshot never writes what LoadFile refuses,
// nor hands cilium/ebpf's marshaller a member without a type (it panics).
func TestSnapshotRefusesCycles(t *testing.T) {
	spec := build(t,
		&cbtf.Func{Name: "takes_self", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "s", Type: &cbtf.Pointer{Target: selfAnon()}}}}},
		&cbtf.Func{Name: "plain", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "x", Type: i32}}}},
	)
	_, err := fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: []string{"takes_self"}})
	assert.EqualError(t, err, "snapshot: invalid BTF: struct self_anon contains itself: struct self_anon member #1 -> struct self_anon: type refers to itself")
	blob, err := fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: []string{"plain"}})
	require.NoError(t, err, "what does not reach the bad struct is fine")
	_, err = fbtf.LoadBytes("plain.btf", blob)
	assert.NoError(t, err)

}

// build marshals types into a spec with cilium/ebpf's Builder, unchecked.
func build(t *testing.T, types ...cbtf.Type) *cbtf.Spec {
	t.Helper()
	spec, err := cbtf.LoadSpecFromReader(bytes.NewReader(marshal(t, types...)))
	require.NoError(t, err)
	return spec
}

// marshal writes types as raw little-endian BTF, unchecked.
func marshal(t *testing.T, types ...cbtf.Type) []byte {
	t.Helper()
	b, err := cbtf.NewBuilder(types, nil)
	require.NoError(t, err)
	blob, err := b.Marshal(nil, &cbtf.MarshalOptions{Order: binary.LittleEndian})
	require.NoError(t, err)
	return blob
}

func names(ms []cbtf.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestVisibleMembersOnce(t *testing.T) {
	inner := &cbtf.Union{Size: 4, Members: []cbtf.Member{{Name: "a", Type: u32}, {Name: "b", Type: u32}}}
	s := &cbtf.Struct{Name: "twice", Size: 8, Members: []cbtf.Member{{Name: "a", Type: u32}, {Type: inner, Offset: 32}}}
	ms := fbtf.VisibleMembers(s)
	assert.Equal(t, []string{"a", "b"}, names(ms), "a name C would refuse twice is listed once")
	assert.Equal(t, cbtf.Bits(0), ms[0].Offset, "where WalkMember finds it")
	m, err := fbtf.WalkMember(s, "a")
	require.NoError(t, err)
	assert.Equal(t, uint32(0), m.Last().Offset)
}
