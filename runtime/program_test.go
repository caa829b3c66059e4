package runtime_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// connectEvent mirrors what the hand-built program writes.
type connectEvent struct {
	Pid    uint32
	Family uint16
	Dport  uint16
	Daddr  uint32
	Reuse  uint8
	_      [3]byte
	Ts     uint64
	Comm   [16]byte
}

// events is the ring buffer the hand-built programs write to.
var events = runtime.NewRing("events", 1<<16)

// buildConnect hand-builds the fentry program for tcp_v4_connect that the
// generator would: family from sk, port and address from uaddr viewed as
// sockaddr_in, pid, comm and time, sent to a ring buffer.
func buildConnect(t *testing.T) *runtime.Program {
	t.Helper()
	p := runtime.New(runtime.Info{Name: "on_connect", Kind: runtime.Fentry, Target: "tcp_v4_connect"})
	sk := runtime.ArgPtr(p, "sk", 0, "sock")
	sin := runtime.ArgPtr(p, "uaddr", 1, "sockaddr").As("sockaddr_in")
	var e connectEvent
	ev := runtime.NewView[connectEvent](p).View
	runtime.Set(ev, unsafe.Offsetof(e.Pid), runtime.TgidValue())
	runtime.Set(ev, unsafe.Offsetof(e.Family), runtime.Field[uint16](sk.Member("__sk_common"), "skc_family"))
	runtime.Set(ev, unsafe.Offsetof(e.Dport), runtime.Field[uint16](sin, "sin_port"))
	runtime.Set(ev, unsafe.Offsetof(e.Daddr), runtime.Field[uint32](sin.Member("sin_addr"), "s_addr"))
	runtime.Set(ev, unsafe.Offsetof(e.Reuse), runtime.Field[uint8](sk.Member("__sk_common"), "skc_reuse"))
	runtime.Set(ev, unsafe.Offsetof(e.Ts), runtime.KtimeNs())
	runtime.SetComm(ev, unsafe.Offsetof(e.Comm), unsafe.Sizeof(e.Comm))
	events.Output(ev)
	require.NoError(t, p.Err())
	return p
}

func targets(t *testing.T) []runtime.Target {
	t.Helper()
	snap, err := fbtf.LoadFile(filepath.Join("..", "testdata", "btf", "vmlinux-min.btf"))
	require.NoError(t, err)
	out := []runtime.Target{{Spec: snap, Name: "snapshot"}, {Spec: otherKernel(t), Name: "synthetic kernel"}}
	if _, err := os.Stat(fbtf.KernelPath); err == nil {
		host, err := fbtf.LoadFile(fbtf.KernelPath)
		require.NoError(t, err)
		out = append(out, runtime.Target{Spec: host, Name: "host " + runtime.KernelRelease()})
	} else {
		t.Logf("no %s: relocating against the snapshot and a synthetic kernel only", fbtf.KernelPath)
	}
	return out
}

// otherKernel is a real BTF spec whose layouts differ from the snapshot's:
// what relocation must follow.
func otherKernel(t *testing.T) *cbtf.Spec {
	t.Helper()
	u8 := &cbtf.Int{Name: "unsigned char", Size: 1}
	u16 := &cbtf.Int{Name: "short unsigned int", Size: 2}
	u32 := &cbtf.Int{Name: "unsigned int", Size: 4}
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	common := &cbtf.Struct{Name: "sock_common", Size: 64, Members: []cbtf.Member{
		{Name: "skc_daddr", Type: u32, Offset: 32 * 8},
		{Name: "skc_family", Type: u16, Offset: 40 * 8},
		{Name: "skc_reuse", Type: u8, Offset: 42*8 + 2, BitfieldSize: 4},
	}}
	sock := &cbtf.Struct{Name: "sock", Size: 128, Members: []cbtf.Member{{Name: "__sk_common", Type: common, Offset: 0}}}
	sockaddr := &cbtf.Struct{Name: "sockaddr", Size: 16}
	inAddr := &cbtf.Struct{Name: "in_addr", Size: 4, Members: []cbtf.Member{{Name: "s_addr", Type: u32}}}
	sin := &cbtf.Struct{Name: "sockaddr_in", Size: 16, Members: []cbtf.Member{
		{Name: "sin_family", Type: u16}, {Name: "sin_port", Type: u16, Offset: 16}, {Name: "sin_addr", Type: inAddr, Offset: 32},
	}}
	fn := &cbtf.Func{Name: "tcp_v4_connect", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{
		{Name: "sk", Type: &cbtf.Pointer{Target: sock}}, {Name: "uaddr", Type: &cbtf.Pointer{Target: sockaddr}}, {Name: "addr_len", Type: i32},
	}}}
	b, err := cbtf.NewBuilder([]cbtf.Type{fn, sin}, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	return spec
}

func TestHandBuiltConnectRelocates(t *testing.T) {
	p := buildConnect(t)
	insns, err := p.Instructions()
	require.NoError(t, err)
	assert.Equal(t, []string{
		"argument sk of tcp_v4_connect", // family: sk
		"sock.__sk_common.skc_family",
		"argument uaddr of tcp_v4_connect",                                     // port: uaddr viewed as sockaddr_in, copied
		"sockaddr_in.sin_port", "sockaddr_in.sin_port", "sockaddr_in.sin_port", // address, size, load
		"argument uaddr of tcp_v4_connect", // addr
		"sockaddr_in.sin_addr.s_addr", "sockaddr_in.sin_addr.s_addr", "sockaddr_in.sin_addr.s_addr",
		"argument sk of tcp_v4_connect", // reuse: one load, shifts added where it is a bitfield
		"sock.__sk_common.skc_reuse",
	}, stripIndex(runtime.Relocations(insns)))

	for _, target := range targets(t) {
		t.Run(target.Name, func(t *testing.T) {
			spec, err := p.Spec(target)
			require.NoError(t, err)
			assert.Equal(t, ebpf.Tracing, spec.Type)
			assert.Equal(t, ebpf.AttachTraceFEntry, spec.AttachType)
			assert.Equal(t, "tcp_v4_connect", spec.AttachTo)
			assert.Equal(t, "fentry/tcp_v4_connect", spec.SectionName)
			assert.Equal(t, "GPL", spec.License)

			family, err := fbtf.ResolveMember(target.Spec, "sock", "__sk_common.skc_family")
			require.NoError(t, err)
			port, err := fbtf.ResolveMember(target.Spec, "sockaddr_in", "sin_port")
			require.NoError(t, err)
			reuse, err := fbtf.ResolveMember(target.Spec, "sock", "__sk_common.skc_reuse")
			require.NoError(t, err)

			reloc := relocated(spec.Instructions)
			assert.Equal(t, int16(family.Last().Offset), reloc["sock.__sk_common.skc_family"][0][0].Offset)
			assert.Equal(t, int64(port.Last().Offset), reloc["sockaddr_in.sin_port"][0][0].Constant, "address of the copy")
			assert.Equal(t, int64(2), reloc["sockaddr_in.sin_port"][1][0].Constant, "bytes copied")
			bits := reloc["sock.__sk_common.skc_reuse"][0]
			assert.Equal(t, int16(reuse.Last().Offset), bits[0].Offset)
			assert.Equal(t, int64(64-reuse.BitOffset-reuse.BitSize), bits[1].Constant, "a bitfield: load and two shifts")
			assert.Equal(t, int64(64-reuse.BitSize), bits[2].Constant)
			assert.Equal(t, int16(8), reloc["argument uaddr of tcp_v4_connect"][0][0].Offset)

			var buf bytes.Buffer
			require.NoError(t, spec.Instructions.Marshal(&buf, binary.LittleEndian))
		})
	}
}

// relocated maps each resolved path to the instructions each of its
// relocations became (up to the next resolved instruction).
func relocated(patched asm.Instructions) map[string][]asm.Instructions {
	out := map[string][]asm.Instructions{}
	lines := runtime.Resolved(patched)
	for n, line := range lines {
		i, name := splitIndex(line)
		end := len(patched)
		if n+1 < len(lines) {
			end, _ = splitIndex(lines[n+1])
		}
		out[name] = append(out[name], patched[i:end])
	}
	return out
}

func splitIndex(line string) (int, string) {
	var i int
	for j := range line {
		if line[j] == ':' {
			return i, line[j+2:]
		}
		i = i*10 + int(line[j]-'0')
	}
	return i, ""
}

func stripIndex(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		_, out[i] = splitIndex(l)
	}
	return out
}

func TestRelocationDiffersAcrossKernels(t *testing.T) {
	p := buildConnect(t)
	ts := targets(t)
	a, err := p.Spec(ts[0])
	require.NoError(t, err)
	b, err := p.Spec(ts[1])
	require.NoError(t, err)
	assert.NotEqual(t, a.Instructions.String(), b.Instructions.String(), "the same paths yield each kernel's own offsets")
}

func TestMissingMember(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "tcp_v4_connect"})
	p.Load(asm.R1, runtime.Field[uint32](runtime.ArgPtr(p, "sk", 0, "sock").Member("__sk_common"), "skc_rcv_saddr"))
	_, err := p.Spec(runtime.Target{Spec: otherKernel(t), Name: "Linux 9.9-test"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `struct sock_common has no such member "skc_rcv_saddr"`)
	assert.Contains(t, err.Error(), "Linux 9.9-test")
	assert.Contains(t, err.Error(), "sock.__sk_common.skc_rcv_saddr")
}

func TestArgumentSizeChange(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "tcp_v4_connect"})
	p.If(runtime.Arg[int64](p, "addr_len", 2).Eq(0), func() {})
	_, err := p.Spec(runtime.Target{Spec: otherKernel(t), Name: "k"})
	assert.ErrorContains(t, err, "argument addr_len of tcp_v4_connect is 4 bytes on k, 8 when generated")

	p = runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "tcp_v4_connect"})
	p.If(runtime.Arg[int32](p, "adr", 2).Eq(0), func() {})
	_, err = p.Spec(runtime.Target{Spec: otherKernel(t), Name: "k"})
	assert.ErrorContains(t, err, `unknown argument "adr" of tcp_v4_connect (have sk, uaddr, addr_len)`)
}

func TestProgramRules(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "f"})
	p.Return(-1)
	assert.ErrorContains(t, p.Err(), "fentry programs must return 0")

	p = runtime.New(runtime.Info{Name: "p", Kind: runtime.Fexit, Target: "f"})
	p.FilterComm("a-very-long-comm-name")
	assert.ErrorContains(t, p.Err(), "1 to 15 bytes")

	p = runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "f"})
	runtime.NewView[[600]byte](p)
	assert.ErrorContains(t, p.Err(), "exceeds 512")

	p = runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "f"})
	runtime.NewRing("tiny", 100).Output(runtime.NewView[uint64](p).View)
	assert.ErrorContains(t, p.Err(), "ring buffer tiny: size 100: want a power of two from 4096 to 1073741824")

	p = runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "f"})
	p.Load(asm.R6, runtime.KtimeNs())
	assert.ErrorContains(t, p.Err(), "r6 holds ctx")

	p = runtime.New(runtime.Info{Name: "p", Kind: runtime.Fentry, Target: "f"})
	p.Load(asm.R1, runtime.Ret[int32](p, 3))
	assert.ErrorContains(t, p.Err(), "fentry programs have no return value")
}

func TestLabelsAndFilters(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "mod", Kind: runtime.FmodRet, Target: "security_socket_connect"})
	p.FilterTgid(42)
	p.FilterComm("curl")
	port := runtime.Field[uint16](runtime.ArgPtr(p, "address", 1, "sockaddr").As("sockaddr_in"), "sin_port")
	p.If(port.Eq(0x5000), func() {
		p.If(runtime.TgidValue().Ne(1), func() { p.Return(-1) })
	})
	insns, err := p.Instructions()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, insns.Marshal(&buf, binary.LittleEndian), "nested ifs share one end label through aliases")
	var refs []string
	for _, ins := range insns {
		if ins.OpCode.Class().IsJump() && ins.Reference() != "" {
			refs = append(refs, ins.Reference())
		}
	}
	assert.Equal(t, []string{"exit", "exit", "exit", "exit", "exit"}, refs, "both ifs end at the epilogue")
	assert.Equal(t, "fmod_ret/security_socket_connect", p.Info().SectionName())
}

func TestSections(t *testing.T) {
	assert.Equal(t, "fentry/tcp_v4_connect", runtime.SectionName(runtime.Fentry, "tcp_v4_connect", false))
	assert.Equal(t, "fexit.s/f", runtime.SectionName(runtime.Fexit, "f", true))
	assert.Equal(t, "fmod_ret/f", runtime.SectionName(runtime.FmodRet, "f", false))
	for _, s := range []string{"fentry/a", "fexit/b", "fmod_ret/c", "fentry.s/d", "fmod_ret.s/e"} {
		k, fn, sleep, err := runtime.ParseSection(s)
		require.NoError(t, err)
		assert.Equal(t, s, runtime.SectionName(k, fn, sleep))
	}
	_, _, _, err := runtime.ParseSection("kprobe/x")
	assert.ErrorContains(t, err, "unknown kind")

	assert.Equal(t, ebpf.AttachTraceFEntry, runtime.Fentry.AttachType())
	assert.Equal(t, ebpf.AttachTraceFExit, runtime.Fexit.AttachType())
	assert.Equal(t, ebpf.AttachModifyReturn, runtime.FmodRet.AttachType())
	assert.EqualValues(t, 24, runtime.Fentry.AttachType())
	assert.EqualValues(t, 25, runtime.Fexit.AttachType())
	assert.EqualValues(t, 26, runtime.FmodRet.AttachType())

	spec := runtime.Info{Name: "a-long/name_with_chars", Kind: runtime.Fexit, Target: "f", Sleepable: true}.ProgramSpec(runtime.Return(0))
	assert.Equal(t, "alongname_with_", spec.Name)
	assert.NotZero(t, spec.Flags, "sleepable sets BPF_F_SLEEPABLE")
	assert.Equal(t, "fexit.s/f", spec.SectionName)
}

func TestDecode(t *testing.T) {
	raw := make([]byte, unsafe.Sizeof(connectEvent{}))
	binary.LittleEndian.PutUint32(raw[0:], 77)
	binary.LittleEndian.PutUint16(raw[4:], 2)
	copy(raw[unsafe.Offsetof(connectEvent{}.Comm):], "curl")
	e, err := runtime.Decode[connectEvent](raw)
	require.NoError(t, err)
	assert.Equal(t, uint32(77), e.Pid)
	assert.Equal(t, uint16(2), e.Family)
	assert.Equal(t, "curl", string(bytes.TrimRight(e.Comm[:], "\x00")))
	_, err = runtime.Decode[connectEvent](raw[:3])
	assert.ErrorContains(t, err, "record of 3 bytes")
	_, err = runtime.Decode[struct{ P *int }](make([]byte, 8))
	assert.ErrorContains(t, err, "not plain data")
}

// pairSpec has takes_pair(int x, struct pair p, u64 y): p by value in slots
// 1 and 2.
func pairSpec(t *testing.T) *cbtf.Spec {
	t.Helper()
	u64 := &cbtf.Int{Name: "u64", Size: 8}
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	pair := &cbtf.Struct{Name: "pair", Size: 16, Members: []cbtf.Member{{Name: "a", Type: u64}, {Name: "b", Type: u64, Offset: 64}}}
	fn := &cbtf.Func{Name: "takes_pair", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{
		{Name: "x", Type: i32}, {Name: "p", Type: pair}, {Name: "y", Type: u64},
	}}}
	b, err := cbtf.NewBuilder([]cbtf.Type{fn}, nil)
	require.NoError(t, err)
	spec, err := b.Spec()
	require.NoError(t, err)
	return spec
}

func TestTwoSlotArgument(t *testing.T) {
	p := runtime.New(runtime.Info{Name: "pair", Kind: runtime.Fexit, Target: "takes_pair"})
	ev := runtime.NewView[[4]uint64](p).View
	runtime.Set(ev, 0, runtime.ArgWord(p, "p", 0, 0)) // slot deliberately wrong: relocation fixes it
	runtime.Set(ev, 8, runtime.ArgWord(p, "p", 0, 1))
	runtime.Set(ev, 16, runtime.Arg[uint64](p, "y", 0))
	runtime.Set(ev, 24, runtime.Ret[int32](p, 0))
	spec, err := p.Spec(runtime.Target{Spec: pairSpec(t), Name: "synthetic"})
	require.NoError(t, err)
	var offs []int16
	for _, ins := range spec.Instructions {
		if ins.OpCode == ldxdw && ins.Src == runtime.CtxReg {
			offs = append(offs, ins.Offset)
		}
	}
	assert.Equal(t, []int16{8, 16, 24, 32}, offs, "p in slots 1-2, y in 3, ret in 4")

	p = runtime.New(runtime.Info{Name: "pair", Kind: runtime.Fentry, Target: "takes_pair"})
	p.Load(asm.R1, runtime.ArgWord(p, "y", 3, 1))
	_, err = p.Spec(runtime.Target{Spec: pairSpec(t), Name: "synthetic"})
	assert.ErrorContains(t, err, "takes 1 slot(s) on synthetic: no word 1")
}

// TestRelocateAcrossRealKernels builds the hand-written connect program and
// a do_mmap reader once and relocates them against the real BTF of Debian's
// 6.1 and 6.12 kernels and the host's: each gets its own offsets and slots.
func TestRelocateAcrossRealKernels(t *testing.T) {
	kernels := vmtest.KernelBTFs(t)
	if _, err := os.Stat(fbtf.KernelPath); err == nil {
		host, err := fbtf.LoadFile(fbtf.KernelPath)
		require.NoError(t, err)
		kernels["host"] = host
	}
	connect := buildConnect(t)
	mmap := runtime.New(runtime.Info{Name: "mmap", Kind: runtime.Fentry, Target: "do_mmap"})
	mmap.Load(asm.R1, runtime.Arg[uint64](mmap, "pgoff", 6))

	pgoffAt := map[string]int16{}
	for name, spec := range kernels {
		target := runtime.Target{Spec: spec, Name: name}
		s, err := connect.Spec(target)
		require.NoError(t, err, name)
		reloc := relocated(s.Instructions)
		for _, path := range []string{"__sk_common.skc_family", "__sk_common.skc_reuse"} {
			m, err := fbtf.ResolveMember(spec, "sock", path)
			require.NoError(t, err)
			assert.Equal(t, int16(m.Last().Offset), reloc["sock."+path][0][0].Offset, "%s on %s", path, name)
		}

		fn, err := fbtf.ResolveFunc(spec, "do_mmap")
		require.NoError(t, err)
		pgoff, err := fn.Arg("pgoff")
		require.NoError(t, err)
		ms, err := mmap.Spec(target)
		require.NoError(t, err)
		// The one slot read is loaded first (r6 = ctx[slot]).
		assert.Equal(t, int16(8*pgoff.Slot), ms.Instructions[0].Offset, "pgoff slot on %s", name)
		pgoffAt[name] = int16(8 * pgoff.Slot)
	}
	t.Logf("do_mmap's pgoff is at ctx offset %v", pgoffAt)
	assert.NotEqual(t, pgoffAt["6.1"], pgoffAt["6.12"], "6.12 added vm_flags before pgoff: the slot moved and relocation followed")
}
