package vmtest

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestGuestBasics proves the harness itself: the guest is a different
// kernel, loopback is up, and bpffs is mounted.
func TestGuestBasics(t *testing.T) {
	Run(t, func(t *testing.T) {
		var u unix.Utsname
		require.NoError(t, unix.Uname(&u))
		release := string(bytes.TrimRight(u.Release[:], "\x00"))
		assert.Equal(t, os.Getenv(EnvInVM), release)
		assert.True(t, strings.HasPrefix(release, "6.1.") || strings.HasPrefix(release, "6.12."), release)
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs("/sys/fs/bpf", &st))
		assert.Equal(t, int64(unix.BPF_FS_MAGIC), int64(st.Type))
		_, err := os.Stat("/sys/kernel/btf/vmlinux")
		assert.NoError(t, err)
		t.Logf("guest kernel %s", release)
	})
}

func TestParse(t *testing.T) {
	res := parse("noise\r\n\x1b[?7l\x1b[2J" + markerKernel + " 6.1.0-56-cloud-amd64\r\n=== RUN   TestX\r\n--- PASS: TestX\r\n\r\n" + markerExit + " 0\r\n[ 1.2] reboot: Power down\r\n")
	assert.Equal(t, "6.1.0-56-cloud-amd64", res.release)
	assert.Equal(t, 0, res.exit)
	assert.Equal(t, "=== RUN   TestX\n--- PASS: TestX", res.output)

	res = parse("[    0.5] Kernel panic - not syncing: no init\r\n")
	assert.Equal(t, -1, res.exit)
	assert.Contains(t, res.output, "Kernel panic")
}

func TestCpio(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeCpio(&buf, map[string]cpioFile{"init": {mode: 0o755, data: []byte("abc")}}))
	s := buf.String()
	assert.True(t, strings.HasPrefix(s, "070701"))
	assert.Contains(t, s, "init\x00")
	assert.Contains(t, s, "TRAILER!!!")
	assert.Zero(t, buf.Len()%4)
}

// TestKernelBTF decompresses each test kernel and reads its BTF.
func TestKernelBTF(t *testing.T) {
	_, err := bzPayload([]byte("not a kernel"))
	assert.ErrorContains(t, err, "not an x86 bzImage")
	for name, spec := range KernelBTFs(t) {
		_, err := spec.AnyTypeByName("tcp_v4_connect")
		assert.NoError(t, err, name)
	}
}
