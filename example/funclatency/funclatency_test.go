package funclatency_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/funclatency"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("funclatency"), vmtest.Ext4()) }

// fn is the function both tools time: ext4's fsync, which fsync(2) of a file
// on ext4 calls once; it is in BTF and kallsyms on every test kernel, and
// nothing else of this process calls it. (vfs_fsync_range, the generic
// step before it, is no longer called on that path in 7.x.)
const fn = "ext4_sync_file"

// TestVMSideBySide times ext4_sync_file with the port (fentry/fexit) and
// with Debian's libbpf-tools funclatency (kprobe/kretprobe) at once, both
// limited to this process, over n fsyncs of a freshly written block on
// ext4, in each unit (-u, -m, nsec by default). An fsync there takes half a
// millisecond to tens of milliseconds, so the few hundred nanoseconds the
// two tools' probes add to each other's timing matter little.
// Ground truth: both histograms hold exactly n calls. Agreement: the output
// is the same but for the histograms' rows; the histograms are the same
// calls timed twice, so a call may land one bucket apart (a latency near a
// power of two), but few do (at most a quarter), and at most one in fifty
// (an interrupt inside one window only; the guests run under TCG) lands
// further.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n = 200
		pid := os.Getpid()
		// Warm up: our loading's own reads happen before the original
		// starts (see vfsstat's test).
		warm, err := funclatency.Load(runtime.Options{Retarget: map[string]string{"onEntry": fn, "onExit": fn}})
		require.NoError(t, err)
		require.NoError(t, warm.Close())
		f, err := os.Create(filepath.Join(vmtest.Ext4Dir(), "fsync"))
		require.NoError(t, err)
		defer f.Close()
		block := bytes.Repeat([]byte{'x'}, 4096)

		var summary []string
		for _, units := range []funclatency.Units{funclatency.Nsec, funclatency.Usec, funclatency.Msec} {
			args := []string{"-p", strconv.Itoa(pid), fn}
			if flag := map[funclatency.Units]string{funclatency.Usec: "-u", funclatency.Msec: "-m"}[units]; flag != "" {
				args = append([]string{flag}, args...)
			}
			// kprobe and kretprobe: two perf links.
			c := vmtest.StartTool(t, "funclatency", 2, args...)
			var ours bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			done, attached := make(chan error, 1), make(chan struct{})
			opts := funclatency.Options{Func: fn, Pid: pid, Units: units, Attached: func() { close(attached) }}
			go func() { done <- funclatency.Run(ctx, &ours, opts) }()
			select {
			case <-attached:
			case err := <-done:
				require.NoError(t, err)
			}

			for i := range n {
				_, err := f.WriteAt(block, int64(i%16)*4096)
				require.NoError(t, err)
				require.NoError(t, f.Sync())
			}

			theirs := c.Interrupt(t)
			cancel()
			require.NoError(t, <-done)
			t.Logf("funclatency %s\nfentrygen:\n%s\nlibbpf-tools:\n%s", strings.Join(args, " "), ours.String(), theirs)
			assert.Equal(t, vmtest.WithoutHistRows(theirs), vmtest.WithoutHistRows(ours.String()), "the same output but for the histograms' rows")
			assert.True(t, strings.HasPrefix(ours.String(), "Tracing "+fn+".  Hit Ctrl-C to exit\n\n     "+units.String()+" "), "header")
			o, err := vmtest.ParseLog2Hist(ours.String())
			require.NoError(t, err)
			th, err := vmtest.ParseLog2Hist(theirs)
			require.NoError(t, err)
			assert.Equal(t, uint64(n), total(o), "fentrygen counts every fsync")
			assert.Equal(t, uint64(n), total(th), "libbpf-tools counts every fsync")
			moved, far := vmtest.HistShift(o, th)
			assert.LessOrEqual(t, far, uint64(n/50), "calls more than one bucket apart")
			assert.LessOrEqual(t, moved, uint64(n/4), "bucket moves")
			summary = append(summary, fmt.Sprintf("%s: fentrygen %d %s | libbpf-tools %d %s | moved %d, far %d", units, total(o), nonZero(o), total(th), nonZero(th), moved, far))
		}
		vmtest.Summary(t, "side-by-side funclatency %s on %s: %s | agree (totals equal; moved at most 25%%, further than a bucket at most 2%%)",
			fn, runtime.KernelRelease(), strings.Join(summary, "; "))
	})
}

func total(h []uint64) (s uint64) {
	for _, v := range h {
		s += v
	}
	return s
}

// nonZero shows the buckets from the first to the last non-empty one.
func nonZero(h []uint64) string {
	first, last := -1, -1
	for i, v := range h {
		if v > 0 {
			last = i
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return "[]"
	}
	return fmt.Sprintf("slots %d-%d %v", first, last, h[first:last+1])
}
