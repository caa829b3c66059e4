package cachestat_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/cachestat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("cachestat"), vmtest.Ext4()) }

const header = "    HITS   MISSES  DIRTIES HITRATIO   BUFFERS_MB  CACHED_MB"

// counts are the summed columns of cachestat's lines.
type counts struct{ hits, misses, dirties int64 }

// parse sums cachestat's lines (-T lines start with the time).
func parse(t *testing.T, out string, timestamp bool) (sum counts) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := header
	if timestamp {
		want = "TIME     " + header
	}
	require.Equal(t, want, lines[0], "the header")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if timestamp {
			require.Regexp(t, `^\d\d:\d\d:\d\d$`, f[0], line)
			f = f[1:]
		}
		require.Len(t, f, 6, line)
		require.True(t, strings.HasSuffix(f[3], "%"), line)
		var v [3]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i], 10, 64)
			require.NoError(t, err, line)
			v[i] = n
		}
		sum.hits, sum.misses, sum.dirties = sum.hits+v[0], sum.misses+v[1], sum.dirties+v[2]
	}
	return sum
}

// trace runs the port around work (interval 1) and returns its output.
func trace(t *testing.T, opts cachestat.Options, work func()) string {
	t.Helper()
	var ours bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done, attached := make(chan error, 1), make(chan struct{})
	opts.Attached = func() { close(attached) }
	go func() { done <- cachestat.Run(ctx, &ours, opts) }()
	select {
	case <-attached:
	case err := <-done:
		require.NoError(t, err)
	}
	work()
	cancel()
	require.NoError(t, <-done)
	t.Logf("fentrygen:\n%s", ours.String())
	return ours.String()
}

// original runs Debian's libbpf-tools cachestat, which cannot load on
// folio kernels (account_page_dirtied and its rename are gone), and
// returns its last complaint.
func original(t *testing.T) string {
	t.Helper()
	target, err := runtime.KernelTarget()
	require.NoError(t, err)
	for _, fn := range []string{"account_page_dirtied", "folio_account_dirtied"} {
		var f *btf.Func
		assert.ErrorIs(t, target.Spec.TypeByName(fn, &f), btf.ErrNotFound, fn)
	}
	out, err := vmtest.Tool("cachestat", "1", "1").CombinedOutput()
	t.Logf("libbpf-tools cachestat:\n%s", out)
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "libbpf-tools cachestat ran: %v\n%s", err, out)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, string(out), "account_page_dirtied")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	assert.Equal(t, "failed to load BPF object", last)
	return last
}

// TestVMSideBySide: Debian's cachestat (v0.26) cannot load on 6.1, 6.12
// or 7.x, so the port stands alone against ground truth, from a file of n
// pages on ext4 (block size b) held in f folios (f = n but on kernels
// where ext4 reads large folios, 7.x; counted from /proc/kpageflags), and
// its own counters. The page cache counts events per folio, as the
// original does (one mark_page_accessed or add per folio):
//
//   - read cold, a page per read(2): f folios added to the cache and each
//     accessed, so MISSES = f and HITS = 0;
//
//   - read again, now cached: each folio accessed (once per run of reads
//     inside it), none added, so HITS = f and MISSES = 0 (a 100% ratio);
//
//   - n pages written to a new file (-T): each folio added to the cache and
//     dirtied (MISSES = 0), and each of its page/b buffers dirtied, so
//     DIRTIES = n*page/b and HITS = 0 (dirtied buffers count against
//     accesses).
//
// With large folios (f < n) a folio is marked accessed once per run of
// reads inside it, and again by a read that found it still under
// read-ahead, which timing decides (17 to 148 marks for 17 folios seen on
// 7.x): there HITS is held between f and n on the cached read and between
// 0 and n - f on the cold one, MISSES to f as everywhere.
//
// The counts are system-wide: the kernel's own work on the filesystem
// (its journal, an inode's atime) may add a few events, at most noise.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n, noise = 256, 16
		msg := original(t)
		dir := vmtest.Ext4Dir()
		path := filepath.Join(dir, "cachestat")
		page := os.Getpagesize()
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs(dir, &st))
		buffers := int64(n * page / int(st.Bsize))

		vmtest.ColdFile(t, path, n)
		cold := parse(t, trace(t, cachestat.Options{}, func() {
			require.Equal(t, n*page, vmtest.ReadPages(t, path, page))
		}), false)
		folios := vmtest.Folios(t, path)
		require.Equal(t, n, vmtest.Resident(t, path))
		fnoise := float64(min(noise, folios/4)) // a quarter of few large folios
		large := folios < n
		assert.InDelta(t, folios, cold.misses, fnoise, "cold read: misses")
		if large {
			// Accesses: one per folio at least, one per read at most.
			assert.GreaterOrEqual(t, cold.hits, int64(-fnoise), "cold read: hits")
			assert.LessOrEqual(t, cold.hits, int64(n-folios)+int64(fnoise), "cold read: hits")
		} else {
			assert.InDelta(t, 0, cold.hits, fnoise, "cold read: hits")
		}

		cached := parse(t, trace(t, cachestat.Options{}, func() {
			require.Equal(t, n*page, vmtest.ReadPages(t, path, page))
		}), false)
		if large {
			assert.GreaterOrEqual(t, cached.hits, int64(folios)-int64(fnoise), "cached read: hits")
			assert.LessOrEqual(t, cached.hits, int64(n)+int64(fnoise), "cached read: hits")
		} else {
			assert.InDelta(t, folios, cached.hits, fnoise, "cached read: hits")
		}
		assert.InDelta(t, 0, cached.misses, fnoise, "cached read: misses")

		written := parse(t, trace(t, cachestat.Options{Timestamp: true}, func() {
			fd, err := unix.Open(filepath.Join(dir, "written"), unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			require.NoError(t, err)
			defer unix.Close(fd)
			buf := bytes.Repeat([]byte{'w'}, page)
			for i := range n {
				_, err := unix.Pwrite(fd, buf, int64(i*page))
				require.NoError(t, err)
			}
		}), true)
		assert.InDelta(t, buffers, written.dirties, noise, "write: dirtied buffers")
		assert.InDelta(t, 0, written.misses, noise, "write: misses")
		assert.InDelta(t, 0, written.hits, noise, "write: hits")

		vmtest.Summary(t, "side-by-side cachestat on %s: fentrygen HITS/MISSES/DIRTIES %d/%d/%d (cold read), %d/%d/%d (cached read), %d/%d/%d (write) | libbpf-tools cannot run: %q (exit 1) | ground truth: %d pages in %d folios (%d-byte blocks): misses %d, then hits %d (within %.0f), then dirtied buffers %d (within %d)",
			runtime.KernelRelease(), cold.hits, cold.misses, cold.dirties, cached.hits, cached.misses, cached.dirties, written.hits, written.misses, written.dirties, msg, n, folios, st.Bsize, folios, folios, fnoise, buffers, noise)
	})
}
