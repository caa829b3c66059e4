package sessionlat_test

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/funclatency"
	"github.com/fentrygen/fentrygen/example/sessionlat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("funclatency"), vmtest.Ext4()) }

// native reports whether the running kernel has fsession: the 7.x guest.
func native() bool { return !strings.HasPrefix(runtime.KernelRelease(), "6.") }

// mechanisms are the ways the probe loads here: as the kernel allows
// (native on 7.x, a pair on 6.x), and on 7.x as a pair too.
func mechanisms() []bool {
	if native() {
		return []bool{false, true}
	}
	return []bool{false}
}

func wantMechanism(pair bool) runtime.Mechanism {
	if pair || !native() {
		return runtime.SessionPair
	}
	return runtime.SessionNative
}

// session runs sessionlat on fn for this process while work runs, and
// returns its output and how it was loaded.
func session(t *testing.T, fn string, units sessionlat.Units, pair bool, work func()) (string, runtime.Mechanism) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done, attached := make(chan error, 1), make(chan runtime.Mechanism, 1)
	opts := sessionlat.Options{Func: fn, Pid: os.Getpid(), Units: units, Pair: pair, Attached: func(m runtime.Mechanism) { attached <- m }}
	go func() { done <- sessionlat.Run(ctx, &out, opts) }()
	var m runtime.Mechanism
	select {
	case m = <-attached:
	case err := <-done:
		require.NoError(t, err)
		t.Fatal("sessionlat returned before attaching")
	}
	work()
	cancel()
	require.NoError(t, <-done)
	return out.String(), m
}

// sleepFn is clock_nanosleep(2)'s entry: only this test calls it (the Go
// runtime sleeps with nanosleep(2) and futexes).
const sleepFn = "__x64_sys_clock_nanosleep"

// TestVMGroundTruth times n clock_nanosleep calls of 3 ms each, measured
// in user space too: each call's latency lies between the sleep asked for
// and the time user space saw, so the histogram holds every call, none
// above the bucket of the longest call user space measured, and the n
// that slept in full none below the bucket of 3000 us. (A signal, such as
// the Go runtime's preemption, may cut a sleep short: such a call counts,
// with its shorter time.) On 7.x both the native fsession and the pair
// must pass.
func TestVMGroundTruth(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n, sleep = 40, 3 * time.Millisecond
		var summary []string
		for _, pair := range mechanisms() {
			var longest time.Duration
			calls := 0
			out, m := session(t, sleepFn, sessionlat.Usec, pair, func() {
				ts := unix.NsecToTimespec(sleep.Nanoseconds())
				for done := 0; done < n; {
					start := time.Now()
					err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, nil)
					longest = max(longest, time.Since(start))
					calls++
					if err == unix.EINTR {
						continue
					}
					require.NoError(t, err)
					done++
				}
			})
			t.Logf("%s (%s), %d calls:\n%s", sleepFn, m, calls, out)
			assert.Equal(t, wantMechanism(pair), m)
			h, err := vmtest.ParseLog2Hist(out)
			require.NoError(t, err)
			low, high := bucket(uint64(sleep.Microseconds())), bucket(uint64(longest.Microseconds()))
			assert.Equal(t, uint64(calls), sum(h), "every call, once")
			assert.Equal(t, uint64(calls), sum(h[:min(high+1, len(h))]), "none longer than user space saw (bucket %d): %v", high, h)
			assert.GreaterOrEqual(t, sum(h[min(low, len(h)):]), uint64(n), "the %d full sleeps no shorter than asked for (bucket %d): %v", n, low, h)
			summary = append(summary, fmt.Sprintf("%s: %d calls (%d cut short) in usec slots %d-%d (want %d-%d)", m, sum(h), calls-n, first(h), last(h), low, high))
		}
		vmtest.Summary(t, "sessionlat ground truth on %s: %d sleeps of %v each | %s", runtime.KernelRelease(), n, sleep, strings.Join(summary, "; "))
	})
}

// fn is the function the side-by-side test times: ext4's fsync, which
// fsync(2) calls once on every test kernel (vfs_fsync_range, which
// funclatency's port times, is inlined into vfs_fsync on 7.x).
const fn = "ext4_sync_file"

// TestVMSideBySide times ext4_sync_file with sessionlat (one fsession
// probe: native on 7.x, a pair on 6.x) and with Debian's libbpf-tools
// funclatency (kprobe and kretprobe) at once, both limited to this
// process, over n fsyncs of a freshly written block on ext4, as
// funclatency's port is tested: both histograms hold exactly n calls, the
// output is the same but for the histograms' rows, and the same calls
// timed twice land in the same bucket but for a few.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n = 200
		pid := os.Getpid()
		// Warm up: our loading's own reads happen before the original
		// starts (see vfsstat's test).
		warm, err := sessionlat.Load(runtime.Options{Retarget: map[string]string{"onCall": fn}})
		require.NoError(t, err)
		require.NoError(t, warm.Close())
		f, err := os.Create(filepath.Join(vmtest.Ext4Dir(), "fsync"))
		require.NoError(t, err)
		defer f.Close()
		block := bytes.Repeat([]byte{'x'}, 4096)
		fsyncs := func() {
			for i := range n {
				_, err := f.WriteAt(block, int64(i%16)*4096)
				require.NoError(t, err)
				require.NoError(t, f.Sync())
			}
		}

		var summary []string
		for _, units := range []sessionlat.Units{sessionlat.Nsec, sessionlat.Usec} {
			args := []string{"-p", strconv.Itoa(pid), fn}
			if units == sessionlat.Usec {
				args = append([]string{"-u"}, args...)
			}
			c := vmtest.StartTool(t, "funclatency", 2, args...)
			ours, m := session(t, fn, units, false, fsyncs)
			theirs := c.Interrupt(t)
			t.Logf("funclatency %s\nsessionlat (%s):\n%s\nlibbpf-tools:\n%s", strings.Join(args, " "), m, ours, theirs)
			assert.Equal(t, wantMechanism(false), m)
			assert.Equal(t, vmtest.WithoutHistRows(theirs), vmtest.WithoutHistRows(ours), "the same output but for the histograms' rows")
			o, err := vmtest.ParseLog2Hist(ours)
			require.NoError(t, err)
			th, err := vmtest.ParseLog2Hist(theirs)
			require.NoError(t, err)
			assert.Equal(t, uint64(n), sum(o), "sessionlat counts every fsync")
			assert.Equal(t, uint64(n), sum(th), "libbpf-tools counts every fsync")
			moved, far := vmtest.HistShift(o, th)
			assert.LessOrEqual(t, far, uint64(n/50), "calls more than one bucket apart")
			assert.LessOrEqual(t, moved, uint64(n/4), "bucket moves")
			summary = append(summary, fmt.Sprintf("%s: sessionlat %d in slots %d-%d | libbpf-tools %d in slots %d-%d | moved %d, far %d", units, sum(o), first(o), last(o), sum(th), first(th), last(th), moved, far))
		}
		vmtest.Summary(t, "side-by-side sessionlat (%s) and libbpf-tools funclatency %s on %s: %s", wantMechanism(false), fn, runtime.KernelRelease(), strings.Join(summary, "; "))
	})
}

// TestVMOverhead measures what a latency probe costs each call: the time
// of a 1-byte read(2) of /dev/zero (vfs_read, a cheap traced path) without
// a probe, and with vfs_read timed for this process by sessionlat as the
// kernel allows it, by sessionlat as a pair (7.x), by funclatency's port
// (an fentry and an fexit probe) and by Debian's libbpf-tools funclatency
// (kprobes). Each is the median of rounds of reads; the overhead is the
// difference to the bare read. Under TCG these times are relative only:
// emulated instructions, not a real machine's. Ground truth: every probe
// counts every read made while it was attached.
func TestVMOverhead(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const reads, rounds = 20000, 5
		zero, err := os.Open("/dev/zero")
		require.NoError(t, err)
		defer zero.Close()
		buf := make([]byte, 1)
		measure := func() time.Duration {
			var per []time.Duration
			for range rounds {
				start := time.Now()
				for range reads {
					if _, err := unix.Read(int(zero.Fd()), buf); err != nil {
						t.Fatal(err)
					}
				}
				per = append(per, time.Since(start)/reads)
			}
			slices.Sort(per)
			return per[rounds/2]
		}
		counted := func(what, out string) {
			h, err := vmtest.ParseLog2Hist(out)
			require.NoError(t, err, what)
			assert.GreaterOrEqual(t, sum(h), uint64(reads*rounds), "%s counts every read", what)
			assert.LessOrEqual(t, sum(h), uint64(reads*rounds+100), "%s counts little else", what)
		}
		bare := measure()
		results := []string{fmt.Sprintf("bare read %v", bare)}
		for _, pair := range mechanisms() {
			var d time.Duration
			out, m := session(t, "vfs_read", sessionlat.Nsec, pair, func() { d = measure() })
			counted("sessionlat "+m.String(), out)
			results = append(results, fmt.Sprintf("sessionlat %s +%v", m, d-bare))
		}

		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done, attached := make(chan error, 1), make(chan struct{})
		opts := funclatency.Options{Func: "vfs_read", Pid: os.Getpid(), Attached: func() { close(attached) }}
		go func() { done <- funclatency.Run(ctx, &out, opts) }()
		select {
		case <-attached:
		case err := <-done:
			require.NoError(t, err)
		}
		d := measure()
		cancel()
		require.NoError(t, <-done)
		counted("funclatency's port", out.String())
		results = append(results, fmt.Sprintf("funclatency port (fentry+fexit) +%v", d-bare))

		c := vmtest.StartTool(t, "funclatency", 2, "-p", strconv.Itoa(os.Getpid()), "vfs_read")
		d = measure()
		counted("libbpf-tools funclatency", c.Interrupt(t))
		results = append(results, fmt.Sprintf("libbpf-tools funclatency (kprobes) +%v", d-bare))

		vmtest.Summary(t, "per-call overhead on vfs_read (1-byte reads of /dev/zero, median of %d rounds of %d, TCG: relative only) on %s: %s",
			rounds, reads, runtime.KernelRelease(), strings.Join(results, "; "))
	})
}

// bucket is the log2 histogram slot of v.
func bucket(v uint64) int {
	if v <= 1 {
		return 0
	}
	return bits.Len64(v) - 1
}

func sum(h []uint64) (s uint64) {
	for _, v := range h {
		s += v
	}
	return s
}

func first(h []uint64) int { return slices.IndexFunc(h, func(v uint64) bool { return v > 0 }) }

func last(h []uint64) int {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] > 0 {
			return i
		}
	}
	return -1
}
