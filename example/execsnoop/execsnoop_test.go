package execsnoop_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/execsnoop"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// execOwnChild loads the probe for this process's children, runs this test
// binary once more as a child that exits at once, and checks the event
// against the truth: the child's pid, this process as its parent, its
// comm and the file exec'd.
func execOwnChild(t *testing.T, objs *execsnoop.Objects) {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run=^$")
	require.NoError(t, cmd.Run())
	e, err := objs.ExecReader.ReadTimeout(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, uint32(cmd.Process.Pid), e.Pid)
	assert.Equal(t, uint32(os.Getpid()), e.Ppid)
	comm := filepath.Base(self)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	assert.Equal(t, comm, string(bytes.TrimRight(e.Comm[:], "\x00")))
	assert.Equal(t, self, string(bytes.TrimRight(e.Filename[:], "\x00")))
	_, err = objs.ExecReader.ReadTimeout(100 * time.Millisecond)
	assert.ErrorIs(t, err, runtime.ErrTimeout, "one exec, one event")
	var line bytes.Buffer
	execsnoop.Print(&line, e)
	t.Logf("on Linux %s: %s", runtime.KernelRelease(), line.String())
}

func load(t *testing.T) (*execsnoop.Objects, error) {
	execsnoop.OnlyParent = uint32(os.Getpid())
	t.Cleanup(func() { execsnoop.OnlyParent = 0 })
	return execsnoop.Load(runtime.Options{})
}

// TestExecLive runs the tp_btf probe on this machine's own kernel, no VM:
// many hosts that refuse fentry allow tp_btf. Where the kernel refuses it
// too, the test skips and says so.
func TestExecLive(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("the VM test covers the guests")
	}
	objs, err := load(t)
	if execsnoop.Refused(err) {
		t.Skipf("!!! NOT RUN LIVE: this kernel (Linux %s) refuses tracing programs: %v", runtime.KernelRelease(), err)
	}
	require.NoError(t, err)
	defer objs.Close()
	execOwnChild(t, objs)
}

// TestVMExec runs the same in the test kernels.
func TestVMExec(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		objs, err := load(t)
		require.NoError(t, err)
		defer objs.Close()
		execOwnChild(t, objs)
	})
}
