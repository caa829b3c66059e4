package runtime_test

import (
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// lseekTmp calls lseek(2) n times on a tmpfs file: n calls of
// shmem_file_llseek from this thread.
func lseekTmp(t *testing.T, n int) {
	t.Helper()
	f, err := os.CreateTemp("", "lseek")
	require.NoError(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	for i := range n {
		_, _, errno := unix.Syscall(unix.SYS_LSEEK, f.Fd(), uintptr(i), 0)
		require.Zero(t, errno)
	}
}

var commHits runtime.Global[runtime.U64]

func init() { commHits.Declare("commHits", runtime.MapOptions{}) }

// TestVMFilterComm: FilterComm matches a short comm, a 15-byte one and not
// another. Debian's 6.1 leaves stack bytes after the comm's NUL, so a filter
// comparing all 16 bytes of an unzeroed buffer never matched short comms
// there.
func TestVMFilterComm(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		for _, tc := range []struct {
			filter, comm string
			match        bool
		}{
			{"ab", "ab", true},
			{"fifteen-bytes-x", "fifteen-bytes-x", true},
			{"ab", "abc", false},
			{"fifteen-bytes-x", "fifteen-bytes-y", false},
		} {
			p := runtime.New(runtime.Info{Name: "comm", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
			// Fill the stack below with non-zero bytes first, as other
			// programs' frames would.
			junk := runtime.NewView[[64]byte](p).View
			runtime.SetComm(junk, 0, 16)
			runtime.SetComm(junk, 16, 16)
			p.FilterComm(tc.filter)
			commHits.Add(p, runtime.Uint32(0), runtime.Uint64(1))
			objs, err := runtime.LoadPackage(runtime.Options{}, []*runtime.Program{p}, &commHits)
			require.NoError(t, err)
			hits, err := runtime.OpenMap[uint32, uint64](objs, "commHits")
			require.NoError(t, err)

			done := make(chan struct{})
			go func() {
				defer close(done)
				goruntime.LockOSThread()
				defer goruntime.UnlockOSThread()
				var old [16]byte
				require.NoError(t, unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&old[0])), 0, 0, 0))
				name := append([]byte(tc.comm), 0)
				require.NoError(t, unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0))
				defer unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&old[0])), 0, 0, 0)
				lseekTmp(t, 5)
			}()
			<-done
			n, _, err := hits.Lookup(0)
			require.NoError(t, err)
			require.NoError(t, objs.Close())
			if tc.match {
				assert.Equal(t, uint64(5), n, "filter %q, comm %q", tc.filter, tc.comm)
			} else {
				assert.Zero(t, n, "filter %q, comm %q", tc.filter, tc.comm)
			}
		}
	})
}

type userlocks struct {
	Locks   uint8
	Nonagle uint8
	_       [6]byte
}

// TestVMBitfieldOrPlain reads sock.sk_userlocks, a 4-bit bitfield on 6.1
// and a plain u8 on 6.12, with one program: the load and shifts are decided
// on the kernel it loads on. It also reads tcp_sock.nonagle, a bitfield,
// through a cast (untyped) pointer: copied with bpf_probe_read_kernel, then
// shifted.
func TestVMBitfieldOrPlain(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		target, err := runtime.KernelTarget()
		require.NoError(t, err)
		m, err := fbtf.ResolveMember(target.Spec, "sock", "sk_userlocks")
		require.NoError(t, err)
		if strings.HasPrefix(runtime.KernelRelease(), "6.1.") {
			require.True(t, m.IsBitfield(), "a bitfield on 6.1")
		} else {
			require.False(t, m.IsBitfield(), "plain since 6.6")
		}

		p := runtime.New(runtime.Info{Name: "userlocks", Kind: runtime.Fentry, Target: "tcp_v4_connect"})
		p.FilterTgid(uint32(os.Getpid()))
		sk := runtime.ArgPtr(p, "sk", 0, "sock")
		var e userlocks
		ev := runtime.NewView[userlocks](p).View
		runtime.Set(ev, unsafe.Offsetof(e.Locks), runtime.Field[uint8](sk, "sk_userlocks"))
		runtime.Set(ev, unsafe.Offsetof(e.Nonagle), runtime.Field[uint8](sk.As("tcp_sock"), "nonagle"))
		events.Output(ev)
		rd := attach[userlocks](t, p)

		port := vmtest.Listen(t)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fd)
		require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<16))
		require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<16))
		require.NoError(t, unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1))
		require.NoError(t, unix.Connect(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}))

		got := collect(t, rd, 1, 2*time.Second)
		require.Len(t, got, 1)
		const sndbufLock, rcvbufLock, nagleOff, naglePush = 1, 2, 1, 4
		assert.Equal(t, uint8(sndbufLock|rcvbufLock), got[0].Locks, "SO_SNDBUF and SO_RCVBUF lock both")
		assert.Equal(t, uint8(nagleOff|naglePush), got[0].Nonagle, "TCP_NODELAY sets TCP_NAGLE_OFF|TCP_NAGLE_PUSH; read through a cast pointer")
		t.Logf("sk_userlocks (bitfield %v here) = %d, nonagle = %d on %s", m.IsBitfield(), got[0].Locks, got[0].Nonagle, runtime.KernelRelease())
	})
}

type tick struct{ N uint64 }

// TestVMEventLoss sends 100,000 events into a ring buffer of one page while
// nothing reads it: every event is either delivered later or counted as
// lost, none vanishes.
func TestVMEventLoss(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		ring := runtime.NewRing("ticks", runtime.MinRingbufSize)
		p := runtime.New(runtime.Info{Name: "ticks", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
		p.FilterTgid(uint32(os.Getpid()))
		ev := runtime.NewView[tick](p).View
		runtime.Set(ev, 0, runtime.Arg[int64](p, "offset", 1).U64())
		ring.Output(ev)
		objs, err := runtime.LoadPackage(runtime.Options{}, []*runtime.Program{p}, ring)
		require.NoError(t, err)
		defer objs.Close()
		rd, err := runtime.OpenReader[tick](objs, "ticks")
		require.NoError(t, err)

		const sent = 100_000
		lseekTmp(t, sent)
		for {
			if _, err := rd.ReadTimeout(100 * time.Millisecond); err != nil {
				require.ErrorIs(t, err, runtime.ErrTimeout)
				break
			}
		}
		lost, err := rd.Lost()
		require.NoError(t, err)
		delivered := rd.Delivered()
		assert.Equal(t, uint64(sent), delivered+lost, "delivered %d + lost %d", delivered, lost)
		assert.NotZero(t, lost, "a page cannot hold them all")
		vmtest.Summary(t, "event loss on %s: sent %d, delivered %d, lost %d (counted per CPU)", runtime.KernelRelease(), sent, delivered, lost)
	})
}

// TestVMSameEventNameTwoPackages loads two packages that both declare an
// event called Event: each has its own ring buffer, and each reader gets
// only its package's records.
func TestVMSameEventNameTwoPackages(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		load := func(mark uint64) (*runtime.Objects, *runtime.Reader[tick]) {
			ring := runtime.NewRing("Event", 1<<14)
			p := runtime.New(runtime.Info{Name: "mark", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
			p.FilterTgid(uint32(os.Getpid()))
			ev := runtime.NewView[tick](p).View
			runtime.Set(ev, 0, runtime.Uint64(mark))
			ring.Output(ev)
			objs, err := runtime.LoadPackage(runtime.Options{}, []*runtime.Program{p}, ring)
			require.NoError(t, err)
			rd, err := runtime.OpenReader[tick](objs, "Event")
			require.NoError(t, err)
			return objs, rd
		}
		a, ra := load(1)
		defer a.Close()
		b, rb := load(2)
		defer b.Close()
		lseekTmp(t, 3)
		for want, rd := range map[uint64]*runtime.Reader[tick]{1: ra, 2: rb} {
			got := collect(t, rd, 3, 2*time.Second)
			require.Len(t, got, 3)
			for _, e := range got {
				assert.Equal(t, want, e.N, "no cross-talk between the two Event ring buffers")
			}
		}
	})
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// TestVMCloseReleasesEverything loads and closes a package 300 times,
// programs attached, maps and a reader open: Close gives back every file
// descriptor.
func TestVMCloseReleasesEverything(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		ring := runtime.NewRing("fds", 1<<14)
		build := func() []*runtime.Program {
			p := runtime.New(runtime.Info{Name: "fds", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
			ev := runtime.NewView[tick](p).View
			runtime.Set(ev, 0, runtime.Uint64(1))
			ring.Output(ev)
			commHits.Add(p, runtime.Uint32(0), runtime.Uint64(1))
			return []*runtime.Program{p}
		}
		// One load first: cilium/ebpf keeps a few descriptors for the life
		// of the process (feature probes), which are not the objects'.
		first, err := runtime.LoadPackage(runtime.Options{}, build(), ring, &commHits)
		require.NoError(t, err)
		require.NoError(t, first.Close())
		before := openFDs(t)
		const cycles = 300
		for range cycles {
			objs, err := runtime.LoadPackage(runtime.Options{}, build(), ring, &commHits)
			require.NoError(t, err)
			_, err = runtime.OpenReader[tick](objs, "fds")
			require.NoError(t, err)
			require.NoError(t, objs.Close())
		}
		after := openFDs(t)
		assert.Equal(t, before, after, "file descriptors before and after %d load/close cycles", cycles)
		vmtest.Summary(t, "fds on %s: %d before, %d after %d load/attach/reader/close cycles", runtime.KernelRelease(), before, after, cycles)
	})
}
