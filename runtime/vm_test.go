package runtime_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// attach loads and attaches p and opens a reader of T on its "events" ring
// buffer, all closed when the test ends.
func attach[T any](t *testing.T, p *runtime.Program) *runtime.Reader[T] {
	t.Helper()
	objs, err := runtime.Load(runtime.Options{}, p)
	require.NoError(t, err)
	t.Cleanup(func() { objs.Close() })
	rd, err := runtime.OpenReader[T](objs, "events")
	require.NoError(t, err)
	return rd
}

// collect reads records until want have arrived or wait passes with
// nothing new, then drains what is already queued (to catch extras).
func collect[T any](t *testing.T, rd *runtime.Reader[T], want int, wait time.Duration) []T {
	t.Helper()
	var out []T
	for len(out) < want {
		v, err := rd.ReadTimeout(wait)
		if errors.Is(err, runtime.ErrTimeout) {
			break
		}
		require.NoError(t, err)
		out = append(out, v)
	}
	for {
		v, err := rd.ReadTimeout(time.Millisecond)
		if err != nil {
			break
		}
		out = append(out, v)
	}
	return out
}

// TestVMHandBuiltConnect loads the hand-built tcp_v4_connect program in a
// real kernel and checks every field of every event against the connects
// this process made.
func TestVMHandBuiltConnect(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		rd := attach[connectEvent](t, buildConnect(t))

		port := vmtest.Listen(t)
		const n = 5
		before := time.Now()
		for range n {
			require.NoError(t, vmtest.Connect(port))
		}
		recs := collect(t, rd, n, 2*time.Second)
		require.Len(t, recs, n, "exactly one event per connect")
		for _, e := range recs {
			assert.Equal(t, uint32(os.Getpid()), e.Pid)
			assert.Equal(t, vmtest.Comm(), string(bytes.TrimRight(e.Comm[:], "\x00")))
			assert.Equal(t, uint16(unix.AF_INET), e.Family)
			assert.Equal(t, vmtest.Htons(port), e.Dport)
			assert.Equal(t, uint32(0x0100007f), e.Daddr, "127.0.0.1 in network order")
			assert.NotZero(t, e.Ts)
		}
		t.Logf("%d events for %d connects to 127.0.0.1:%d from pid %d in %v", len(recs), n, port, os.Getpid(), time.Since(before))
	})
}

type retEvent struct {
	Ret  int64
	Pid  uint32
	Size uint32
}

// TestVMFexitReturn reads tcp_v4_connect's int return value from
// ctx[nr_slots], sign-extended: 0 for a connect that succeeds,
// -EAFNOSUPPORT for an AF_INET socket asked to connect to an AF_INET6
// address (tcp_v4_connect itself refuses it), and -ENETUNREACH while lo has
// no address.
func TestVMFexitReturn(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "connect_ret", Kind: runtime.Fexit, Target: "tcp_v4_connect"})
		p.FilterTgid(uint32(os.Getpid()))
		var e retEvent
		ev := runtime.NewView[retEvent](p).View
		runtime.Set(ev, unsafe.Offsetof(e.Ret), runtime.Ret[int32](p, 3).S64())
		runtime.Set(ev, unsafe.Offsetof(e.Pid), runtime.TgidValue())
		events.Output(ev)
		rd := attach[retEvent](t, p)

		port := vmtest.Listen(t)
		require.NoError(t, vmtest.Connect(port))
		require.ErrorIs(t, vmtest.ConnectWrongFamily(port), syscall.EAFNOSUPPORT)
		require.ErrorIs(t, vmtest.ConnectUnreachable(t, port), syscall.ENETUNREACH)
		require.NoError(t, vmtest.Connect(port), "lo is back")

		recs := collect(t, rd, 4, 2*time.Second)
		require.Len(t, recs, 4)
		var got []int64
		for _, e := range recs {
			assert.Equal(t, uint32(os.Getpid()), e.Pid)
			got = append(got, e.Ret)
		}
		assert.Equal(t, []int64{0, -int64(syscall.EAFNOSUPPORT), -int64(syscall.ENETUNREACH), 0}, got, "the int return, sign-extended from its u64 slot")
	})
}

// TestVMFmodRetDenies makes security_socket_connect return -EPERM for one
// port only, and checks that detaching restores it.
func TestVMFmodRetDenies(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		denied, allowed := vmtest.Listen(t), vmtest.Listen(t)
		p := runtime.New(runtime.Info{Name: "deny_port", Kind: runtime.FmodRet, Target: "security_socket_connect"})
		port := runtime.Field[uint16](runtime.ArgPtr(p, "address", 1, "sockaddr").As("sockaddr_in"), "sin_port")
		p.If(port.Eq(vmtest.Htons(denied)), func() { p.Return(-int32(syscall.EPERM)) })
		objs, err := runtime.Load(runtime.Options{}, p)
		require.NoError(t, err)

		assert.ErrorIs(t, vmtest.Connect(denied), syscall.EPERM)
		assert.NoError(t, vmtest.Connect(allowed))
		assert.ErrorIs(t, vmtest.Connect(denied), syscall.EPERM)
		require.NoError(t, objs.Close())
		assert.NoError(t, vmtest.Connect(denied), "after Close the hook is gone")
	})
}

// TestVMVerifierLog makes the verifier reject a read past ctx and checks the
// error carries its log.
func TestVMVerifierLog(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "bad_ctx", Kind: runtime.Fentry, Target: "tcp_v4_connect"})
		p.Emit(runtime.LoadCtx(asm.R1, runtime.CtxReg, 20))
		_, err := runtime.Load(runtime.Options{}, p)
		require.Error(t, err)
		msg := err.Error()
		assert.Contains(t, msg, "verifier rejected it")
		assert.Contains(t, msg, "verifier log")
		assert.Contains(t, msg, "fentry/tcp_v4_connect")
		assert.Contains(t, msg, "invalid bpf_context access")
		t.Logf("rejection as the user sees it:\n%s", msg)
	})
}

type mmapEvent struct {
	Len, Pgoff, Flags uint64
}

// TestVMManyArgs reads do_mmap's len (slot 2) and pgoff (slot 6, past the
// sixth slot). On kernels before 6.6 the x86-64 trampoline refuses more than
// six slots, and the error must say so.
func TestVMManyArgs(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "mmap_args", Kind: runtime.Fentry, Target: "do_mmap"})
		p.FilterTgid(uint32(os.Getpid()))
		var e mmapEvent
		ev := runtime.NewView[mmapEvent](p).View
		runtime.Set(ev, unsafe.Offsetof(e.Len), runtime.Arg[uint64](p, "len", 2))
		runtime.Set(ev, unsafe.Offsetof(e.Pgoff), runtime.Arg[uint64](p, "pgoff", 6))
		runtime.Set(ev, unsafe.Offsetof(e.Flags), runtime.Arg[uint64](p, "flags", 4))
		events.Output(ev)
		objs, err := runtime.Load(runtime.Options{}, p)
		if strings.HasPrefix(runtime.KernelRelease(), "6.1.") {
			require.Error(t, err)
			assert.Contains(t, err.Error(), "at most 6 (x86-64 before Linux 6.6)")
			t.Logf("as expected on %s: %v", runtime.KernelRelease(), err)
			return
		}
		require.NoError(t, err)
		defer objs.Close()
		rd, err := runtime.OpenReader[mmapEvent](objs, "events")
		require.NoError(t, err)

		vmtest.MmapFile(t, 2, 3, unix.PROT_READ)
		page := os.Getpagesize()

		var found bool
		for _, e := range collect(t, rd, 1, 2*time.Second) {
			if e.Len == uint64(2*page) && e.Pgoff == 3 {
				found = true
				assert.Equal(t, uint64(unix.MAP_SHARED), e.Flags&unix.MAP_SHARED)
			}
		}
		assert.True(t, found, "an event with len=2 pages and pgoff=3")
	})
}

type uidEvent struct {
	Uid uint32
	Ret uint32
}

// TestVMStructByValue reads from_kuid_munged's kuid_t argument, a struct
// passed by value in one slot, and its return value.
func TestVMStructByValue(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "kuid", Kind: runtime.Fexit, Target: "from_kuid_munged"})
		p.FilterTgid(uint32(os.Getpid()))
		var e uidEvent
		ev := runtime.NewView[uidEvent](p).View
		runtime.Set(ev, unsafe.Offsetof(e.Uid), runtime.Arg[uint32](p, "kuid", 1))
		runtime.Set(ev, unsafe.Offsetof(e.Ret), runtime.Ret[uint32](p, 2))
		events.Output(ev)
		rd := attach[uidEvent](t, p)

		const uid = 4321
		vmtest.GetuidAs(t, uid)

		var seen bool
		for _, e := range collect(t, rd, 1, 2*time.Second) {
			if e.Uid == uid {
				seen = true
				assert.Equal(t, uint32(uid), e.Ret)
			}
		}
		assert.True(t, seen, "an event with kuid.val == %d", uid)
	})
}

type hopEvent struct {
	Family uint16
	Type   uint16
	Proto  uint16
	_      uint16
}

// TestVMPointerHops follows socket->sk (one load) to
// sk->__sk_common.skc_family and reads socket->type, from fentry on
// security_socket_connect, through BTF-typed pointers only.
func TestVMPointerHops(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "hops", Kind: runtime.Fentry, Target: "security_socket_connect"})
		p.FilterTgid(uint32(os.Getpid()))
		sock := runtime.ArgPtr(p, "sock", 0, "socket")
		sk := sock.Deref("sk", "sock")
		var e hopEvent
		ev := runtime.NewView[hopEvent](p).View
		runtime.Set(ev, unsafe.Offsetof(e.Family), runtime.Field[uint16](sk.Member("__sk_common"), "skc_family"))
		runtime.Set(ev, unsafe.Offsetof(e.Type), runtime.Field[int16](sock, "type").U16())
		runtime.Set(ev, unsafe.Offsetof(e.Proto), runtime.Field[uint16](sk, "sk_protocol"))
		events.Output(ev)
		rd := attach[hopEvent](t, p)

		port := vmtest.Listen(t)
		require.NoError(t, vmtest.Connect(port))
		recs := collect(t, rd, 1, 2*time.Second)
		require.Len(t, recs, 1)
		got := recs[0]
		assert.Equal(t, uint16(unix.AF_INET), got.Family, "socket->sk->__sk_common.skc_family")
		assert.Equal(t, uint16(unix.SOCK_STREAM), got.Type, "socket->type")
		assert.Equal(t, uint16(unix.IPPROTO_TCP), got.Proto, "socket->sk->sk_protocol")
	})
}

// TestVMFmodRetIneligible: the kernel refuses fmod_ret on a function that
// neither is a security hook nor allows error injection, as btf.Validate
// warns at generate time.
func TestVMFmodRetIneligible(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "bad_modret", Kind: runtime.FmodRet, Target: "tcp_v4_connect"})
		_, err := runtime.Load(runtime.Options{}, p)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "fmod_ret/tcp_v4_connect")
		assert.Contains(t, err.Error(), "tcp_v4_connect() is not modifiable", "the verifier's own words")
		t.Logf("the kernel's answer: %v", err)
	})
}
