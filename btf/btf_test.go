package btf_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// kernelSpec is the running kernel's BTF, read (and checked) once.
var kernelSpec = sync.OnceValues(func() (*cbtf.Spec, error) { return fbtf.LoadFile(fbtf.KernelPath) })

// specs returns the BTFs every test runs against: the committed snapshot
// always, and the running kernel's when it is readable.
func specs(t *testing.T) map[string]*cbtf.Spec {
	t.Helper()
	out := map[string]*cbtf.Spec{}
	snap, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", "vmlinux-min.btf"))
	require.NoError(t, err)
	out["snapshot"] = snap
	if _, err := os.Stat(fbtf.KernelPath); err == nil {
		kernel, err := kernelSpec()
		require.NoError(t, err)
		out["kernel"] = kernel
	} else {
		t.Logf("no %s here: testing against the committed snapshot only", fbtf.KernelPath)
	}
	return out
}

func forEachSpec(t *testing.T, f func(t *testing.T, spec *cbtf.Spec)) {
	for name, spec := range specs(t) {
		t.Run(name, func(t *testing.T) { f(t, spec) })
	}
}

func TestResolveTCPv4Connect(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		fn, err := fbtf.ResolveFunc(spec, "tcp_v4_connect")
		require.NoError(t, err)
		assert.Equal(t, []string{"sk", "uaddr", "addr_len"}, fn.ArgNames())
		assert.Equal(t, "int tcp_v4_connect(struct sock *sk, struct sockaddr *uaddr, int addr_len)", fn.Prototype())
		assert.Equal(t, 3, fn.NumSlots)
		assert.Equal(t, 3, fn.Return.Slot)
		assert.Equal(t, fbtf.KindInt, fn.Return.Kind)
		assert.True(t, fn.Return.Signed)
		assert.Equal(t, 4, fn.Return.Size)

		uaddr, err := fn.Arg("uaddr")
		require.NoError(t, err)
		assert.Equal(t, 1, uaddr.Index)
		assert.Equal(t, 1, uaddr.Slot)
		assert.Equal(t, fbtf.KindPointer, uaddr.Kind)
		assert.Equal(t, "struct sockaddr *", uaddr.CType)

		typ, err := fn.ArgType("addr_len")
		require.NoError(t, err)
		assert.Equal(t, "int", fbtf.CType(typ))
		assert.Equal(t, "int", fbtf.CType(fn.ReturnType()))

		_, err = fn.Arg("adr")
		require.ErrorIs(t, err, fbtf.ErrUnknownArg)
		assert.EqualError(t, err, `unknown argument "adr" of tcp_v4_connect (have sk, uaddr, addr_len)`)

		assert.Equal(t, []fbtf.Save{{Arg: "sk", Reg: 6}, {Arg: "uaddr", Reg: 7}, {Arg: "addr_len", Reg: 8}}, fbtf.SuggestSaves(fn))
	})
}

func TestResolveManyArgs(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		fn, err := fbtf.ResolveFunc(spec, "do_mmap")
		require.NoError(t, err)
		require.Greater(t, len(fn.Params), 6)
		pgoff, err := fn.Arg("pgoff")
		require.NoError(t, err)
		assert.Equal(t, 6, pgoff.Slot, "pgoff sits past the sixth slot")
		assert.Equal(t, "long unsigned int", pgoff.CType)
		assert.False(t, pgoff.Signed)
		assert.Equal(t, 8, pgoff.Size)
		assert.Equal(t, len(fn.Params), fn.Return.Slot)
		// Four saves at most: only r6-r9 survive helper calls.
		saves := fbtf.SuggestSaves(fn)
		require.Len(t, saves, 4)
		assert.Equal(t, 9, saves[3].Reg)

		v := fbtf.Validate(spec, "do_mmap", nil)
		require.True(t, v.Traceable())
		assert.Contains(t, strings.Join(v.Notes, "\n"), "before 6.6 take at most 6")
	})
}

func TestResolveStructByValue(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		fn, err := fbtf.ResolveFunc(spec, "from_kuid_munged")
		require.NoError(t, err)
		kuid, err := fn.Arg("kuid")
		require.NoError(t, err)
		assert.Equal(t, fbtf.KindAggregate, kuid.Kind)
		assert.Equal(t, "kuid_t", kuid.CType, "typedef name kept for display")
		assert.Equal(t, 4, kuid.Size)
		assert.Equal(t, 1, kuid.Slots)
		assert.Equal(t, 1, kuid.Slot)
		assert.Equal(t, 2, fn.Return.Slot)
		assert.Equal(t, "uid_t", fn.Return.CType)
	})
}

// syntheticSpec builds a real BTF spec with shapes no single kernel function
// shows: a 16-byte struct by value, an oversized struct, two functions with
// one name, a variadic prototype and too many slots.
func syntheticSpec(t *testing.T) *cbtf.Spec {
	t.Helper()
	u64 := &cbtf.Int{Name: "u64", Size: 8}
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	pair := &cbtf.Struct{Name: "pair", Size: 16, Members: []cbtf.Member{
		{Name: "a", Type: u64}, {Name: "b", Type: u64, Offset: 64},
	}}
	big := &cbtf.Struct{Name: "big", Size: 24, Members: []cbtf.Member{
		{Name: "a", Type: u64}, {Name: "b", Type: u64, Offset: 64}, {Name: "c", Type: u64, Offset: 128},
	}}
	proto := func(ret cbtf.Type, params ...cbtf.FuncParam) *cbtf.FuncProto {
		return &cbtf.FuncProto{Return: ret, Params: params}
	}
	var many []cbtf.FuncParam
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		many = append(many, cbtf.FuncParam{Name: n, Type: pair})
	}
	types := []cbtf.Type{
		&cbtf.Func{Name: "takes_pair", Type: proto(i32, cbtf.FuncParam{Name: "x", Type: i32}, cbtf.FuncParam{Name: "p", Type: pair}, cbtf.FuncParam{Name: "y", Type: u64})},
		&cbtf.Func{Name: "takes_big", Type: proto(i32, cbtf.FuncParam{Name: "b", Type: big})},
		&cbtf.Func{Name: "twice", Type: proto(i32)},
		&cbtf.Func{Name: "twice", Type: proto(i32, cbtf.FuncParam{Name: "x", Type: i32})},
		&cbtf.Func{Name: "printk_like", Type: proto(i32, cbtf.FuncParam{Name: "fmt", Type: i32}, cbtf.FuncParam{Type: &cbtf.Void{}})},
		&cbtf.Func{Name: "too_many", Type: proto(i32, many...)},
	}
	b, err := cbtf.NewBuilder(types, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	return spec
}

func TestResolveSynthetic(t *testing.T) {
	spec := syntheticSpec(t)

	fn, err := fbtf.ResolveFunc(spec, "takes_pair")
	require.NoError(t, err)
	p, err := fn.Arg("p")
	require.NoError(t, err)
	assert.Equal(t, 1, p.Slot)
	assert.Equal(t, 2, p.Slots, "a 16-byte struct by value takes two slots")
	y, err := fn.Arg("y")
	require.NoError(t, err)
	assert.Equal(t, 3, y.Slot)
	assert.Equal(t, 4, fn.Return.Slot)
	assert.Equal(t, []fbtf.Save{{Arg: "x", Reg: 6}, {Arg: "y", Reg: 7}}, fbtf.SuggestSaves(fn), "two-slot aggregates do not fit one register")

	_, err = fbtf.ResolveFunc(spec, "takes_big")
	assert.ErrorIs(t, err, fbtf.ErrArgTooLarge)
	assert.ErrorContains(t, err, "struct big is 24 bytes")

	_, err = fbtf.ResolveFunc(spec, "twice")
	assert.ErrorIs(t, err, fbtf.ErrAmbiguous)
	assert.ErrorContains(t, err, "2 definitions")

	_, err = fbtf.ResolveFunc(spec, "printk_like")
	assert.ErrorIs(t, err, fbtf.ErrVariadic)

	_, err = fbtf.ResolveFunc(spec, "too_many")
	assert.ErrorIs(t, err, fbtf.ErrTooManyArgs)
	assert.ErrorContains(t, err, "(14)")

	v := fbtf.Validate(spec, "twice", nil)
	assert.False(t, v.Traceable())
	assert.ErrorIs(t, v.Fentry, fbtf.ErrAmbiguous)
}

func TestResolveErrors(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		_, err := fbtf.ResolveFunc(spec, "sock")
		assert.ErrorIs(t, err, fbtf.ErrNotFunction)
		assert.EqualError(t, err, "sock is a struct, not a function")

		_, err = fbtf.ResolveFunc(spec, "tcp_v4_conect")
		assert.ErrorIs(t, err, fbtf.ErrNotFound)
		assert.ErrorContains(t, err, "did you mean tcp_v4_connect")
	})
}

func TestValidate(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		v := fbtf.Validate(spec, "migrate_disable", nil)
		assert.False(t, v.Traceable())
		assert.ErrorIs(t, v.Fentry, fbtf.ErrDenied)
		assert.ErrorIs(t, v.FmodRet, fbtf.ErrDenied)

		v = fbtf.Validate(spec, "security_socket_connect", nil)
		require.True(t, v.Traceable())
		assert.NoError(t, v.Fentry)
		assert.NoError(t, v.Fexit)
		assert.NoError(t, v.FmodRet, "security_* hooks take fmod_ret")

		v = fbtf.Validate(spec, "tcp_v4_connect", nil)
		assert.ErrorIs(t, v.FmodRet, fbtf.ErrUnknownInject, "without the list, say unknown")
		v = fbtf.Validate(spec, "tcp_v4_connect", fbtf.ErrorInjection{"tcp_v4_connect": true})
		assert.NoError(t, v.FmodRet)
		v = fbtf.Validate(spec, "tcp_v4_connect", fbtf.ErrorInjection{"other": true})
		assert.ErrorIs(t, v.FmodRet, fbtf.ErrNoInjection)

		v = fbtf.Validate(spec, "tcp_close", fbtf.ErrorInjection{"tcp_close": true})
		assert.ErrorIs(t, v.FmodRet, fbtf.ErrFmodRetReturn, "void functions cannot be fmod_ret targets")
	})
}

func TestParseErrorInjection(t *testing.T) {
	list, err := fbtf.ParseErrorInjection(strings.NewReader("should_failslab\tERRNO\nopen_ctree\tERRNO\n\n"))
	require.NoError(t, err)
	assert.Equal(t, fbtf.ErrorInjection{"should_failslab": true, "open_ctree": true}, list)
}

func TestMemberPaths(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		// skc_daddr sits in an anonymous struct inside an anonymous union.
		m, err := fbtf.ResolveMember(spec, "sock", "__sk_common.skc_daddr")
		require.NoError(t, err)
		require.Len(t, m.Hops, 1)
		assert.Equal(t, uint32(0), m.Last().Offset)
		assert.Equal(t, "__be32", fbtf.CType(m.Last().Type))
		assert.False(t, m.IsBitfield())

		fam, err := fbtf.ResolveMember(spec, "sock", "__sk_common.skc_family")
		require.NoError(t, err)
		assert.Equal(t, uint32(16), fam.Last().Offset)

		// A pointer hop: sk_socket is a pointer, its type a new load.
		hop, err := fbtf.ResolveMember(spec, "sock", "sk_socket.type")
		require.NoError(t, err)
		require.Len(t, hop.Hops, 2)
		assert.Equal(t, "struct socket *", fbtf.CType(hop.Hops[0].Type))
		assert.Equal(t, "socket", hop.Hops[1].Base.TypeName())
		assert.Equal(t, []string{"type"}, hop.Hops[1].Path)

		// An array element.
		addr, err := fbtf.ResolveMember(spec, "sockaddr_in6", "sin6_addr.in6_u.u6_addr32[3]")
		require.NoError(t, err)
		assert.Equal(t, uint32(8+12), addr.Last().Offset)

		// A bitfield.
		reuse, err := fbtf.ResolveMember(spec, "sock", "__sk_common.skc_reuse")
		require.NoError(t, err)
		assert.True(t, reuse.IsBitfield())
		assert.Equal(t, uint32(4), reuse.BitSize)
		assert.Equal(t, uint32(0), reuse.BitOffset)
		port, err := fbtf.ResolveMember(spec, "sock", "__sk_common.skc_reuseport")
		require.NoError(t, err)
		assert.Equal(t, uint32(1), port.BitSize)
		assert.Equal(t, uint32(4), port.BitOffset)
		assert.Equal(t, reuse.Last().Offset, port.Last().Offset)

		_, err = fbtf.ResolveMember(spec, "sock", "sk_prot")
		assert.ErrorIs(t, err, fbtf.ErrUnknownMember)
		assert.ErrorContains(t, err, "did you mean __sk_common.skc_prot")
		_, err = fbtf.ResolveMember(spec, "sock", "__sk_common.skc_daddr.x")
		assert.ErrorContains(t, err, "not a struct or union")
		_, err = fbtf.ResolveMember(spec, "sockaddr_in6", "sin6_addr.in6_u.u6_addr32[4]")
		assert.ErrorContains(t, err, "index out of range")
		_, err = fbtf.ResolveMember(spec, "sokc", "x")
		assert.ErrorIs(t, err, fbtf.ErrNotFound)
		assert.ErrorContains(t, err, "did you mean sock")
	})
}

func TestSnapshotRoundTrip(t *testing.T) {
	forEachSpec(t, func(t *testing.T, spec *cbtf.Spec) {
		funcs := []string{"tcp_v4_connect", "do_mmap", "from_kuid_munged"}
		blob, err := fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: funcs, Types: []string{"sockaddr_in"}, Depth: 1})
		require.NoError(t, err)
		t.Logf("snapshot of %v at depth 1: %d bytes", funcs, len(blob))
		path := filepath.Join(t.TempDir(), "snap.btf")
		require.NoError(t, os.WriteFile(path, blob, 0o644))
		back, err := fbtf.LoadFile(path)
		require.NoError(t, err)

		for _, name := range funcs {
			want, err := fbtf.ResolveFunc(spec, name)
			require.NoError(t, err)
			got, err := fbtf.ResolveFunc(back, name)
			require.NoError(t, err)
			assert.Equal(t, want.Prototype(), got.Prototype())
			assert.Equal(t, want.NumSlots, got.NumSlots)
			for i := range want.Params {
				assert.Equal(t, want.Params[i].Slot, got.Params[i].Slot)
				assert.Equal(t, want.Params[i].Kind, got.Params[i].Kind)
			}
		}
		for _, path := range []string{"__sk_common.skc_daddr", "__sk_common.skc_reuseport", "sk_protocol"} {
			want, err := fbtf.ResolveMember(spec, "sock", path)
			require.NoError(t, err)
			got, err := fbtf.ResolveMember(back, "sock", path)
			require.NoError(t, err)
			assert.Equal(t, want.Last().Offset, got.Last().Offset, path)
			assert.Equal(t, want.BitSize, got.BitSize, path)
		}
		sin, err := fbtf.ResolveMember(back, "sockaddr_in", "sin_port")
		require.NoError(t, err)
		assert.Equal(t, uint32(2), sin.Last().Offset)

		// Depth 1 keeps struct sock but cuts the pointers inside it.
		_, err = fbtf.ResolveMember(back, "sock", "sk_socket.type")
		assert.ErrorContains(t, err, "void")

		deeper, err := fbtf.Snapshot(spec, fbtf.SnapshotOptions{Funcs: funcs, Types: []string{"sockaddr_in"}, Depth: 2})
		require.NoError(t, err)
		assert.Greater(t, len(deeper), len(blob))
	})
}

func TestEmbedded(t *testing.T) {
	spec, err := fbtf.Embedded()
	require.NoError(t, err)
	assert.Greater(t, fbtf.EmbeddedSize(), 0)
	for _, name := range []string{"tcp_v4_connect", "security_socket_connect", "do_mmap", "from_kuid_munged"} {
		_, err := fbtf.ResolveFunc(spec, name)
		assert.NoError(t, err, name)
	}
}

func TestNearest(t *testing.T) {
	assert.Equal(t, []string{"uaddr"}, fbtf.Nearest("adr", []string{"sk", "uaddr", "addr_len"}, 3))
	assert.Equal(t, []string{"sock"}, fbtf.Nearest("sokc", []string{"sk", "sock", "ioc"}, 1), "a swap costs one edit")
	assert.Empty(t, fbtf.Nearest("zzzzzz", []string{"sk", "uaddr"}, 3))
}

// TestRealKernels runs the lookups against the BTF of Debian's 6.1 and
// 6.12 kernels: 6.1's BTF still has several functions under one name.
func TestRealKernels(t *testing.T) {
	kernels := vmtest.KernelBTFs(t)
	for name, spec := range kernels {
		require.NoError(t, fbtf.Check(spec), "a real kernel's BTF passes every check")
		fn, err := fbtf.ResolveFunc(spec, "tcp_v4_connect")
		require.NoError(t, err, name)
		assert.Equal(t, []string{"sk", "uaddr", "addr_len"}, fn.ArgNames(), name)
		m, err := fbtf.ResolveMember(spec, "sock", "__sk_common.skc_daddr")
		require.NoError(t, err, name)
		assert.Equal(t, uint32(0), m.Last().Offset, name)
		v := fbtf.Validate(spec, "migrate_disable", nil)
		assert.ErrorIs(t, v.Err, fbtf.ErrDenied, name)
	}
	_, err := fbtf.ResolveFunc(kernels["6.1"], "__x64_sys_socketcall")
	assert.ErrorIs(t, err, fbtf.ErrAmbiguous, "two __x64_sys_socketcall in 6.1's BTF")
	assert.ErrorContains(t, err, "2 definitions")
	mmap, err := fbtf.ResolveFunc(kernels["6.1"], "do_mmap")
	require.NoError(t, err)
	assert.Equal(t, 8, mmap.NumSlots, "6.1's do_mmap has no vm_flags")
}
