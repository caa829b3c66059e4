package loopwatch_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/loopwatch"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// loopIndex is the loop device the test adds: past the 8 the module makes
// when it loads.
const loopIndex = 42

// ctl is an ioctl on /dev/loop-control, which takes its argument by value.
func ctl(f *os.File, cmd, parm uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), cmd, parm)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// TestVMLoopwatch loads the probes on the loop module's functions in each
// test kernel (vmtest.Modules loaded loop.ko) and drives the driver with
// known ioctls: every /dev/loop-control ioctl gives one event with its
// command, argument and the access mode of the file it came through, and
// every LOOP_GET_STATUS64 one with the device's number, state, minor and
// the result: -ENXIO while no file is bound, 0 and Lo_bound once one is.
func TestVMLoopwatch(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		_, err := os.Stat("/sys/kernel/btf/loop")
		require.NoError(t, err, "vmtest.Modules loaded loop, with its BTF")

		loopwatch.OnlyPid = uint32(os.Getpid())
		defer func() { loopwatch.OnlyPid = 0 }()
		objs, err := loopwatch.Load(runtime.Options{})
		require.NoError(t, err)
		defer objs.Close()

		rw, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
		require.NoError(t, err)
		defer rw.Close()
		ro, err := os.OpenFile("/dev/loop-control", os.O_RDONLY, 0)
		require.NoError(t, err)
		defer ro.Close()

		type call struct {
			cmd, parm uintptr
			flags     int // access mode of the file
		}
		var calls []call
		control := func(f *os.File, flags int, cmd, parm uintptr) (int, error) {
			calls = append(calls, call{cmd, parm, flags})
			return ctl(f, cmd, parm)
		}
		n, err := control(rw, unix.O_RDWR, unix.LOOP_CTL_ADD, loopIndex)
		require.NoError(t, err)
		require.Equal(t, loopIndex, n)
		_, err = control(ro, unix.O_RDONLY, unix.LOOP_CTL_GET_FREE, 0)
		require.NoError(t, err)

		dev := openLoop(t, loopIndex)
		const unbound = 2
		for range unbound {
			_, err = unix.IoctlLoopGetStatus64(int(dev.Fd()))
			require.ErrorIs(t, err, unix.ENXIO, "no file bound yet")
		}
		backing := filepath.Join(t.TempDir(), "backing.img")
		require.NoError(t, os.WriteFile(backing, make([]byte, 1<<20), 0o600))
		bf, err := os.OpenFile(backing, os.O_RDWR, 0)
		require.NoError(t, err)
		defer bf.Close()
		require.NoError(t, unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_FD, int(bf.Fd())))
		info, err := unix.IoctlLoopGetStatus64(int(dev.Fd()))
		require.NoError(t, err)
		require.Equal(t, uint32(loopIndex), info.Number)
		require.NoError(t, unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0))
		require.NoError(t, dev.Close())
		// The device goes once its last user is gone: busy until then.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			_, err = control(rw, unix.O_RDWR, unix.LOOP_CTL_REMOVE, loopIndex)
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				break
			}
		}
		require.NoError(t, err, "LOOP_CTL_REMOVE")

		var got []loopwatch.Control
		for {
			e, err := objs.ControlReader.ReadTimeout(time.Second)
			if err != nil {
				require.ErrorIs(t, err, runtime.ErrTimeout)
				break
			}
			got = append(got, e)
		}
		require.Len(t, got, len(calls), "one event per /dev/loop-control ioctl")
		for i, e := range got {
			assert.Equal(t, uint32(calls[i].cmd), e.Cmd, "cmd of call %d", i)
			assert.Equal(t, uint64(calls[i].parm), e.Parm, "parm of call %d", i)
			assert.Equal(t, calls[i].flags, int(e.Flags)&unix.O_ACCMODE, "file->f_flags of call %d: %#x", i, e.Flags)
		}

		var statuses []loopwatch.Status
		for {
			e, err := objs.StatusReader.ReadTimeout(time.Second)
			if err != nil {
				require.ErrorIs(t, err, runtime.ErrTimeout)
				break
			}
			statuses = append(statuses, e)
		}
		const loBound = 1
		want := []loopwatch.Status{}
		for range unbound {
			want = append(want, loopwatch.Status{Number: loopIndex, State: 0, Minor: loopIndex, Ret: -int32(syscall.ENXIO)})
		}
		want = append(want, loopwatch.Status{Number: loopIndex, State: loBound, Minor: loopIndex, Ret: 0})
		assert.Equal(t, want, statuses, "lo->lo_number, lo->lo_state, lo->lo_disk->first_minor and the result of each LOOP_GET_STATUS64")

		var cmds []string
		for _, e := range got {
			cmds = append(cmds, "0x"+strconv.FormatUint(uint64(e.Cmd), 16))
		}
		vmtest.Summary(t, "loopwatch on %s: loop module probes: %d loop-control ioctls (%s), %d loop_get_status (%d unbound -ENXIO, 1 bound)",
			runtime.KernelRelease(), len(got), strings.Join(cmds, " "), len(statuses), unbound)
	})
}

// openLoop opens /dev/loopN, which devtmpfs makes when the device is
// added (made here should it not be there yet).
func openLoop(t *testing.T, n int) *os.File {
	t.Helper()
	path := "/dev/loop" + strconv.Itoa(n)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		require.NoError(t, unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(7, uint32(n)))))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	return f
}

// TestVMModuleNotLoaded: a probe on a function of a module the kernel has
// not loaded (dummy, a module of every test kernel that nothing loads
// here) fails to load with a message that says which module to load.
func TestVMModuleNotLoaded(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		p := runtime.New(runtime.Info{Name: "onXmit", Kind: runtime.Fentry, Module: "dummy", Target: "dummy_xmit"})
		_, err := runtime.Load(runtime.Options{}, p)
		require.Error(t, err)
		assert.ErrorContains(t, err, "module dummy: no BTF for this module")
		assert.ErrorContains(t, err, "load the module first (modprobe dummy)")
		t.Log(err)
	})
}
