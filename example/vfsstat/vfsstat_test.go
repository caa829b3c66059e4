package vfsstat_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/vfsstat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("vfsstat")) }

// totals adds up the per-second columns of vfsstat's lines (interval 1:
// a rate is a count).
func totals(t *testing.T, out string) [5]uint64 {
	t.Helper()
	var sum [5]uint64
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "TIME         READ/s  WRITE/s  FSYNC/s   OPEN/s CREATE/s", lines[0], "the header")
	for _, line := range lines[1:] {
		_, cols, ok := strings.Cut(line, ": ")
		require.True(t, ok, line)
		f := strings.Fields(cols)
		require.Len(t, f, 5, line)
		for i, s := range f {
			n, err := strconv.ParseUint(s, 10, 64)
			require.NoError(t, err, line)
			sum[i] += n
		}
	}
	return sum
}

// TestVMSideBySide runs the port and Debian's libbpf-tools vfsstat in the
// same guest over the same workload: n reads, writes, fsyncs, opens and
// creates (mknod) on a tmpfs file. Both count at least n of each (ground
// truth; fsync excepted, which neither can see), and they agree within the
// other calls the system made while only one of them was counting.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n, lines, noise = 2000, 4, 64
		// Loading reads the kernel's BTF and symbols (megabytes, over a
		// thousand reads): ours are read and cached here, before the
		// original starts counting.
		warm, err := vfsstat.Load(runtime.Options{})
		require.NoError(t, err)
		require.NoError(t, warm.Close())
		c := vmtest.StartTool(t, "vfsstat", 5, "1", strconv.Itoa(lines))
		var ours bytes.Buffer
		done, attached := make(chan error, 1), make(chan struct{})
		go func() {
			done <- vfsstat.Run(context.Background(), &ours, vfsstat.Options{Interval: 1, Count: lines, Attached: func() { close(attached) }})
		}()
		select {
		case <-attached:
		case err := <-done:
			require.NoError(t, err)
		}

		dir := t.TempDir()
		var f *os.File
		f, err = os.Create(filepath.Join(dir, "file"))
		require.NoError(t, err)
		buf := make([]byte, 16)
		for i := range n {
			_, err := f.WriteAt(buf, 0)
			require.NoError(t, err)
			_, err = f.ReadAt(buf, 0)
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			g, err := os.Open(f.Name())
			require.NoError(t, err)
			g.Close()
			require.NoError(t, syscall.Mknod(filepath.Join(dir, strconv.Itoa(i)), syscall.S_IFREG|0o644, 0))
		}
		f.Close()

		theirs := c.Wait(t)
		require.NoError(t, <-done)
		o, c2 := totals(t, ours.String()), totals(t, theirs)
		names := []string{"READ", "WRITE", "FSYNC", "OPEN", "CREATE"}
		var diffs []string
		for i := range o {
			// fsync(2) reaches vfs_fsync inlined into do_fsync on these
			// kernels: neither tool can see it, and both say so.
			if want := uint64(n); names[i] != "FSYNC" {
				assert.GreaterOrEqual(t, o[i], want, "fentrygen %s", names[i])
				assert.GreaterOrEqual(t, c2[i], want, "libbpf-tools %s", names[i])
			}
			diff := int64(o[i]) - int64(c2[i])
			// What one counted and the other did not happened outside the
			// workload, while only one was attached (the end of our load,
			// the original's exit): a few dozen calls at most.
			assert.LessOrEqual(t, max(diff, -diff), int64(noise), "%s: fentrygen %d, libbpf-tools %d", names[i], o[i], c2[i])
			diffs = append(diffs, fmt.Sprintf("%s %d/%d", names[i], o[i], c2[i]))
		}
		t.Logf("fentrygen:\n%s\nlibbpf-tools:\n%s", ours.String(), theirs)
		vmtest.Summary(t, "side-by-side vfsstat on %s: fentrygen | libbpf-tools: %s (n=%d each but FSYNC, within %d) | agree", runtime.KernelRelease(), strings.Join(diffs, " "), n, noise)
	})
}
