package fsdist_test

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
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/fsdist"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("fsdist"), vmtest.Ext4()) }

var ops = []string{"read", "write", "open", "fsync", "getattr"}

// hists sums fsdist's output by operation: every "operation = 'NAME'"
// section's histogram rows.
func hists(t *testing.T, out string) map[string][]uint64 {
	t.Helper()
	sums := map[string][]uint64{}
	for _, sec := range strings.Split(out, "operation = '")[1:] {
		name, rows, ok := strings.Cut(sec, "'\n")
		require.True(t, ok, sec)
		h, err := vmtest.ParseLog2Hist(rows)
		require.NoError(t, err)
		for len(sums[name]) < len(h) {
			sums[name] = append(sums[name], 0)
		}
		for i, v := range h {
			sums[name][i] += v
		}
	}
	return sums
}

func total(h []uint64) (s uint64) {
	for _, v := range h {
		s += v
	}
	return s
}

// TestVMSideBySide runs the port and Debian's libbpf-tools fsdist (both
// fentry/fexit on the same five ext4 functions) at once, both limited to
// this process, over a workload of single syscalls on the guest's ext4
// disk: one creating open, then n each of pwrite, pread, fsync, stat and
// open.
//
// Ground truth: write n, read n, fsync n, getattr n and open n+1, on both.
//
// Agreement: the output is the same but for the histograms' rows, and each
// operation's two histograms are the same calls timed twice. The guests run
// under TCG emulation (6.1 reads its clock from an emulated HPET), where a
// cached read, open or stat takes tens of microseconds, much of it the
// probes themselves, and each tool's window holds one of the other's
// programs (ours their fexit, theirs our fentry). So calls may land one
// bucket apart, as many as half of a quick operation's; what must hold is
// that at most a twentieth of the calls (an interrupt inside one window
// only) land further, and that fsync, which takes milliseconds, agrees but
// for a tenth of the calls.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n = 200
		pid := os.Getpid()
		warm, err := fsdist.Load(runtime.Options{})
		require.NoError(t, err)
		require.NoError(t, warm.Close())
		// Five fentry and five fexit programs.
		c := vmtest.StartTool(t, "fsdist", 10, "-t", "ext4", "-p", strconv.Itoa(pid))
		var ours bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done, attached := make(chan error, 1), make(chan struct{})
		go func() {
			done <- fsdist.Run(ctx, &ours, fsdist.Options{Pid: pid, Attached: func() { close(attached) }})
		}()
		select {
		case <-attached:
		case err := <-done:
			require.NoError(t, err)
		}

		// One syscall per operation (no os.File: it may fstat).
		path := filepath.Join(vmtest.Ext4Dir(), "fsdist")
		fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
		require.NoError(t, err)
		block := bytes.Repeat([]byte{'x'}, 4096)
		var st unix.Stat_t
		for i := range n {
			off := int64(i%16) * 4096
			_, err := unix.Pwrite(fd, block, off)
			require.NoError(t, err)
			_, err = unix.Pread(fd, block, off)
			require.NoError(t, err)
			require.NoError(t, unix.Fsync(fd))
			require.NoError(t, unix.Stat(path, &st))
			g, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			require.NoError(t, err)
			require.NoError(t, unix.Close(g))
		}
		require.NoError(t, unix.Close(fd))

		theirs := c.Interrupt(t)
		cancel()
		require.NoError(t, <-done)
		t.Logf("fentrygen:\n%s\nlibbpf-tools:\n%s", ours.String(), theirs)
		assert.Equal(t, vmtest.WithoutHistRows(theirs), vmtest.WithoutHistRows(ours.String()), "the same output but for the histograms' rows")
		o, th := hists(t, ours.String()), hists(t, theirs)
		want := map[string]uint64{"read": n, "write": n, "open": n + 1, "fsync": n, "getattr": n}
		var summary []string
		for _, op := range ops {
			assert.Equal(t, want[op], total(o[op]), "fentrygen %s", op)
			assert.Equal(t, want[op], total(th[op]), "libbpf-tools %s", op)
			moved, far := vmtest.HistShift(o[op], th[op])
			assert.LessOrEqual(t, far, want[op]/20, "%s: calls more than one bucket apart", op)
			if op == "fsync" {
				assert.LessOrEqual(t, moved, want[op]/10, "%s: bucket moves", op)
			}
			summary = append(summary, fmt.Sprintf("%s %d/%d (moved %d, far %d)", op, total(o[op]), total(th[op]), moved, far))
		}
		vmtest.Summary(t, "side-by-side fsdist on %s: fentrygen | libbpf-tools: %s | agree (totals exact; more than a bucket apart: at most 5%%)",
			runtime.KernelRelease(), strings.Join(summary, ", "))
	})
}
