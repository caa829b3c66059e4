package btf_test

import (
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

func TestIsCIdent(t *testing.T) {
	for _, name := range []string{"a", "_", "_a1", "sk_buff", "A_B", "x9"} {
		assert.True(t, fbtf.IsCIdent(name), name)
	}
	for _, name := range []string{"", "1a", "a b", "a.b", "a-b", "é", "a\x00", "x()\nfunc init(){}"} {
		assert.False(t, fbtf.IsCIdent(name), name)
	}
}

// TestOddNamesStayInBTF: a name that is not a C identifier never leaves
// this package as a name: an argument called so is an error, a member
// called so is not listed, a type called so is quoted, and none is
// suggested.
func TestOddNamesStayInBTF(t *testing.T) {
	const odd = "x()\nfunc init() {}\nfunc y"
	named := &cbtf.Struct{Name: "odd" + odd, Size: 4, Members: []cbtf.Member{{Name: "x", Type: u32}}}
	member := &cbtf.Struct{Name: "odd_member", Size: 8, Members: []cbtf.Member{{Name: "ok", Type: u32}, {Name: odd, Type: u32, Offset: 32}}}
	spec := build(t,
		&cbtf.Func{Name: "odd_param", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: odd, Type: i32}}}},
		&cbtf.Func{Name: "odd_struct", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Name: "p", Type: &cbtf.Pointer{Target: named}}}}},
		&cbtf.Func{Name: "unnamed", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{{Type: i32}}}},
		member,
	)

	_, err := fbtf.ResolveFunc(spec, "odd_param")
	assert.ErrorIs(t, err, fbtf.ErrBadName)
	assert.EqualError(t, err, `function odd_param argument 0: name "x()\nfunc init() {}\nfunc y" is not a C identifier`)
	_, err = fbtf.ResolveFunc(spec, "unnamed")
	assert.NoError(t, err, "a parameter without a name is not odd")

	fn, err := fbtf.ResolveFunc(spec, "odd_struct")
	require.NoError(t, err)
	assert.Equal(t, `int odd_struct(struct "oddx()\nfunc init() {}\nfunc y" *p)`, fn.Prototype())
	assert.NotContains(t, fn.Prototype(), "\n")

	m, err := fbtf.LookupComposite(spec, "odd_member")
	require.NoError(t, err)
	assert.Equal(t, []string{"ok"}, names(fbtf.VisibleMembers(m)))
	_, err = fbtf.WalkMember(m, odd)
	assert.EqualError(t, err, `malformed path element "x()\nfunc init() {}\nfunc y" (want name or name[i])`)
	_, err = fbtf.WalkMember(m, "x")
	assert.EqualError(t, err, `struct odd_member has no such member "x"`)

	_, err = fbtf.LookupComposite(spec, "oddx")
	assert.EqualError(t, err, "struct oddx: not found in BTF", "the odd struct, which contains oddx, is no suggestion")
}
