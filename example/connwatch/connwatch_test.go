package connwatch_test

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/connwatch"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// TestVMConnwatch runs the generated probes in a real kernel: N connects
// from this process give exactly N entry events whose pid, comm, family,
// address and port are the truth, and N exit events with ret 0, then
// -EAFNOSUPPORT (wrong address family) and -ENETUNREACH (lo without its
// address), sign-extended.
func TestVMConnwatch(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		connwatch.OnlyPid = uint32(os.Getpid())
		defer func() { connwatch.OnlyPid = 0 }()
		objs, err := connwatch.Load(runtime.Options{})
		require.NoError(t, err)
		defer objs.Close()
		events, results := objs.ConnectEventReader, objs.ConnectResultReader

		port := vmtest.Listen(t)
		const n = 4
		for range n {
			require.NoError(t, vmtest.Connect(port))
		}
		require.ErrorIs(t, vmtest.ConnectWrongFamily(port), syscall.EAFNOSUPPORT)
		require.ErrorIs(t, vmtest.ConnectUnreachable(t, port), syscall.ENETUNREACH)

		var got []connwatch.ConnectEvent
		for {
			e, err := events.ReadTimeout(time.Second)
			if err != nil {
				require.ErrorIs(t, err, runtime.ErrTimeout)
				break
			}
			got = append(got, e)
		}
		// The wrong-family and unreachable connects enter tcp_v4_connect
		// too: n+2 events.
		require.Len(t, got, n+2)
		for i, e := range got {
			assert.Equal(t, uint32(os.Getpid()), e.Pid)
			assert.Equal(t, vmtest.Comm(), string(bytes.TrimRight(e.Comm[:], "\x00")))
			assert.Equal(t, uint16(unix.AF_INET), e.Family, "sk->__sk_common.skc_family")
			assert.Equal(t, vmtest.Htons(port), e.Dport)
			if i != n { // the wrong-family address is not an IPv4 one
				assert.Equal(t, uint32(0x0100007f), e.Daddr, "127.0.0.1")
			}
			assert.NotZero(t, e.Ts)
		}
		var rets []int32
		for {
			r, err := results.ReadTimeout(time.Second)
			if err != nil {
				break
			}
			assert.Equal(t, uint32(os.Getpid()), r.Pid)
			rets = append(rets, r.Ret)
		}
		assert.Equal(t, []int32{0, 0, 0, 0, -int32(syscall.EAFNOSUPPORT), -int32(syscall.ENETUNREACH)}, rets)
		t.Logf("%d entry events, exit results %v, from pid %d to 127.0.0.1:%d", len(got), rets, os.Getpid(), port)
	})
}

// TestVMDenyConnect builds denyConnect with DeniedPort set and checks the
// kernel refuses exactly that port until the probe is closed.
func TestVMDenyConnect(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		denied, allowed := vmtest.Listen(t), vmtest.Listen(t)
		connwatch.DeniedPort = denied
		defer func() { connwatch.DeniedPort = 0 }()
		objs, err := connwatch.Load(runtime.Options{Only: []string{"denyConnect"}})
		require.NoError(t, err)
		assert.ErrorIs(t, vmtest.Connect(denied), syscall.EPERM)
		assert.NoError(t, vmtest.Connect(allowed))
		require.NoError(t, objs.Close())
		assert.NoError(t, vmtest.Connect(denied))
	})
}

// TestVMEveryProbeLoads loads and attaches each generated probe alone.
func TestVMEveryProbeLoads(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		for _, p := range connwatch.Programs() {
			objs, err := runtime.Load(runtime.Options{}, p)
			if assert.NoError(t, err, p.Info().Name) {
				assert.Len(t, objs.Links, 1)
				require.NoError(t, objs.Close())
			}
		}
	})
}
