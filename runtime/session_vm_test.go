package runtime_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

type sessionEvent struct {
	Count  uint64
	Ret    int64
	Cookie int64
}

// The reads the session test makes: counts the kernel sees nowhere else.
const (
	readFull    = 777001 // from /dev/zero: returns the count
	readNoEntry = 777002 // the entry part ends early: no cookie set
	readAgain   = 777003
	readBadFd   = 777004 // on a write-only fd: -EBADF
)

// buildSessionCheck is an fsession on vfs_read for this process's reads of
// 777000 to 777999 bytes: the entry part sets the cookie to -count (an
// s32, sign-extended at the exit) except for readNoEntry, and the exit part
// sends the count, the return value and the cookie.
func buildSessionCheck(pid int) *runtime.Program {
	return runtime.NewSession(runtime.Info{Name: "sess_check", Kind: runtime.Fsession, Target: "vfs_read"}, func(p *runtime.Program) {
		p.FilterTgid(uint32(pid))
		count := runtime.Arg[uint64](p, "count", 2)
		p.If(count.Lt(777000), p.Exit)
		p.If(count.Gt(777999), p.Exit)
		runtime.AtEntry(p, func() {
			p.If(count.Eq(readNoEntry), p.Exit)
			runtime.SetCookie(p, runtime.Int32(0).SubV(count.S32()))
		})
		runtime.AtExit(p, func() {
			var e sessionEvent
			ev := runtime.NewView[sessionEvent](p).View
			runtime.Set(ev, unsafe.Offsetof(e.Count), count)
			runtime.Set(ev, unsafe.Offsetof(e.Ret), runtime.Ret[int64](p, 4))
			runtime.Set(ev, unsafe.Offsetof(e.Cookie), runtime.Cookie[int32](p).S64())
			events.Output(ev)
		})
	})
}

// TestVMSession loads the session check as the kernel allows (native
// fsession on 7.x, a pair elsewhere) and, on 7.x, as a pair too; both
// must see every read with its count, return value and cookie, and the
// cookie 0 where the entry part set none.
func TestVMSession(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		native := !strings.HasPrefix(runtime.KernelRelease(), "6.")
		zero, err := os.Open("/dev/zero")
		require.NoError(t, err)
		defer zero.Close()
		wronly, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
		require.NoError(t, err)
		defer wronly.Close()
		buf := make([]byte, readBadFd)

		modes := []bool{false}
		if native {
			modes = append(modes, true)
		}
		for _, pair := range modes {
			objs, err := runtime.Load(runtime.Options{SessionPair: pair}, buildSessionCheck(os.Getpid()))
			require.NoError(t, err)
			want, links := runtime.SessionNative, 1
			if pair || !native {
				want, links = runtime.SessionPair, 2
			}
			assert.Equal(t, want, objs.Mechanism("sess_check"), "pair forced: %v", pair)
			assert.Len(t, objs.Links, links)
			rd, err := runtime.OpenReader[sessionEvent](objs, "events")
			require.NoError(t, err)

			for _, n := range []int{readFull, readNoEntry, readAgain} {
				got, err := zero.Read(buf[:n])
				require.NoError(t, err)
				require.Equal(t, n, got)
			}
			_, err = unix.Read(int(wronly.Fd()), buf[:readBadFd])
			require.ErrorIs(t, err, syscall.EBADF)

			recs := collect(t, rd, 4, 2*time.Second)
			assert.Equal(t, []sessionEvent{
				{Count: readFull, Ret: readFull, Cookie: -readFull},
				{Count: readNoEntry, Ret: readNoEntry, Cookie: 0},
				{Count: readAgain, Ret: readAgain, Cookie: -readAgain},
				{Count: readBadFd, Ret: -int64(syscall.EBADF), Cookie: -readBadFd},
			}, recs, "%s", objs.Mechanism("sess_check"))
			require.NoError(t, objs.Close())
			t.Logf("%s on %s: %d reads seen at entry and exit", want, runtime.KernelRelease(), len(recs))
		}
	})
}
