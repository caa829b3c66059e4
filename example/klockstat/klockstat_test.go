package klockstat_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/klockstat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	fruntime "github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("klockstat")) }

// row is one caller's line of a table, its times in nanoseconds.
type row struct {
	count           uint64
	avg, max, total float64
}

// agg is a function's rows added up: counts and totals summed, the
// largest max.
type agg struct {
	rows       int
	count      uint64
	max, total float64
}

var unitNs = map[string]float64{"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}

var headers = regexp.MustCompile(`^ {31}Caller  Avg (Wait|Hold)    Count   Max (Wait|Hold)   Total (Wait|Hold)$`)

func parseTime(t *testing.T, num, unit string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(num, 64)
	require.NoError(t, err, num)
	u, ok := unitNs[unit]
	require.True(t, ok, unit)
	return v * u
}

// parse reads klockstat's output (one print) into the two tables, by the
// caller's function name (the +0x offset dropped).
func parse(t *testing.T, out string) map[string]map[string]agg {
	t.Helper()
	lines := strings.Split(out, "\n")
	require.Equal(t, "Tracing mutex/sem lock events...  Hit Ctrl-C to end", lines[0])
	require.Contains(t, out, "\nExiting trace of mutex/sem locks\n")
	tables := map[string]map[string]agg{}
	var table string
	for _, line := range lines[1:] {
		if m := headers.FindStringSubmatch(line); m != nil {
			table = m[1]
			tables[table] = map[string]agg{}
			continue
		}
		f := strings.Fields(line)
		if table == "" || len(f) != 8 {
			table = ""
			continue
		}
		// "%37s %9s %8llu %10s %12s": wider only for long names.
		require.Equal(t, 37+1+9+1+8+1+10+1+12, len(line)-max(len(f[0])-37, 0), "row %q", line)
		count, err := strconv.ParseUint(f[3], 10, 64)
		require.NoError(t, err, line)
		name, _, _ := strings.Cut(f[0], "+0x")
		a := tables[table][name]
		a.rows++
		a.count += count
		a.max = max(a.max, parseTime(t, f[4], f[5]))
		a.total += parseTime(t, f[6], f[7])
		tables[table][name] = a
	}
	return tables
}

// pipeWork writes and reads 1 byte n times on a blocking pipe, from one
// thread: n pipe_write and n pipe_read calls, each taking the pipe's
// mutex once, none waiting.
func pipeWork(t *testing.T, n int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var p [2]int
	require.NoError(t, syscall.Pipe2(p[:], syscall.O_CLOEXEC))
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	b := []byte{'x'}
	for range n {
		_, err := syscall.Write(p[1], b)
		require.NoError(t, err)
		_, err = syscall.Read(p[0], b)
		require.NoError(t, err)
	}
}

// contention has writers threads write 1 byte m times each to one
// blocking pipe while a thread reads them, 64 bytes at most per read,
// until all are read: writers*m pipe_write calls contending for the
// pipe's mutex with each other and the reader, and reads calls of
// pipe_read (returned), which take the mutex again after each wait for
// data. The pipe never fills, so writers never wait for room.
func contention(t *testing.T, writers, m int) (reads int) {
	t.Helper()
	var p [2]int
	require.NoError(t, syscall.Pipe2(p[:], syscall.O_CLOEXEC))
	defer syscall.Close(p[0])
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b := []byte{'w'}
			for range m {
				if _, err := syscall.Write(p[1], b); err != nil {
					panic(err)
				}
			}
		}()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64)
	for got := 0; got < writers*m; reads++ {
		n, err := syscall.Read(p[0], buf)
		require.NoError(t, err)
		got += n
	}
	wg.Wait()
	syscall.Close(p[1])
	return reads
}

// sideBySide runs Debian's klockstat with args and the port with opts
// (both limited to this process) around work, and returns what each
// printed.
func sideBySide(t *testing.T, args []string, opts klockstat.Options, work func()) (ours, theirs string) {
	t.Helper()
	pid := os.Getpid()
	warm, err := klockstat.Load(fruntime.Options{})
	require.NoError(t, err)
	require.NoError(t, warm.Close())
	// 22 programs: fentry and fexit on 8 lock functions, fexit on 3
	// trylocks, fentry on 3 unlocks.
	c := vmtest.StartLockTool(t, "klockstat", 22, append([]string{"-p", strconv.Itoa(pid)}, args...)...)
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done, attached := make(chan error, 1), make(chan struct{})
	opts.Pid, opts.Attached = pid, func() { close(attached) }
	go func() { done <- klockstat.Run(ctx, &out, opts) }()
	select {
	case <-attached:
	case err := <-done:
		require.NoError(t, err)
	}
	work()
	// Ours first: the original's output comes through a pipe this
	// process reads.
	cancel()
	require.NoError(t, <-done)
	theirs = c.Interrupt(t)
	t.Logf("fentrygen:\n%s\nlibbpf-tools:\n%s", out.String(), theirs)
	return out.String(), theirs
}

// TestVMSideBySide runs the port and Debian's libbpf-tools klockstat at
// once, both limited to this process and to the pipe's callers, over
// two workloads on blocking pipes: n write-read pairs from one thread,
// then writers threads writing m bytes each to one pipe while a thread
// reads them in reads calls.
//
// The caller is the stack's first frame after the 4 that both skip. On
// these kernels that skips the lock function's caller too: pipe_write and
// pipe_read take the pipe's mutex (mutex_lock, __pipe_lock inlined), and
// the row is their caller, vfs_write or vfs_read (both lock sites of
// pipe_read land in one row: the stacks are equal after the skip). 7.x
// inlines vfs_write and vfs_read into ksys_write and ksys_read, which are
// the rows there. There both tools' stacks put some acquisitions under
// other callers, a different share each run (2388 to 2997 of 3000 writes
// seen, by either tool), so each tool's count is held between half the
// truth and the truth, and not to the other's.
//
// Ground truth, in both tables (wait and hold) of both: vfs_write (that
// is, pipe_write) takes the mutex once per call, n + writers*m times;
// vfs_read once per call and again after each wait for data, at least
// n + reads times. Both watch the same calls, so each function's counts
// are also equal. Rows of other callers with the same prefix come from
// this process before the second tool attached (the harness waits for the
// original's programs through /proc), and are left out.
//
// Times are compared by TestVMSideBySideHold, not here: these
// acquisitions take microseconds, as long as the probes themselves, and
// the trampolines run both tools' programs one after the other, so each
// tool's window holds part of the other's programs (ours the original's
// fentry program, a stack walk and a hash update: 10 to 50 us more per
// acquisition, here, under TCG emulation), and a stall of the emulated
// vCPU (tens of milliseconds when other VMs share the host's two cores)
// in such a part shows in one tool only: maxima of 74.9 ms against
// 14.4 ms were seen. The summary reports them.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n, writers, m = 1000, 4, 500
		prefix, inlined := "vfs_", strings.HasPrefix(fruntime.KernelRelease(), "7.")
		if inlined {
			prefix = "ksys_"
		}
		write, read := prefix+"write", prefix+"read"
		var reads int
		ours, theirs := sideBySide(t, []string{"-c", prefix}, klockstat.Options{Caller: prefix}, func() {
			pipeWork(t, n)
			reads = contention(t, writers, m)
		})
		o, th := parse(t, ours), parse(t, theirs)
		var summary []string
		for _, table := range []string{"Wait", "Hold"} {
			require.Contains(t, o, table)
			require.Contains(t, th, table)
			for _, fn := range []string{write, read} {
				a, b := o[table][fn], th[table][fn]
				want := uint64(n + writers*m)
				if fn == read {
					want = uint64(n + reads)
				}
				if !inlined {
					if fn == write {
						assert.Equal(t, want, a.count, "fentrygen %s %s count", table, fn)
						assert.Equal(t, want, b.count, "libbpf-tools %s %s count", table, fn)
					} else {
						assert.GreaterOrEqual(t, a.count, want, "fentrygen %s %s count", table, fn)
						assert.GreaterOrEqual(t, b.count, want, "libbpf-tools %s %s count", table, fn)
					}
					assert.Equal(t, b.count, a.count, "%s %s count", table, fn)
				} else {
					// Some acquisitions land in other rows (see above).
					lo := want / 2
					assert.GreaterOrEqual(t, a.count, lo, "fentrygen %s %s count", table, fn)
					assert.GreaterOrEqual(t, b.count, lo, "libbpf-tools %s %s count", table, fn)
					if fn == write {
						assert.LessOrEqual(t, a.count, want, "fentrygen %s %s count", table, fn)
						assert.LessOrEqual(t, b.count, want, "libbpf-tools %s %s count", table, fn)
					}
				}
				summary = append(summary, fmt.Sprintf("%s %s count %d/%d max %s/%s total %s/%s (%+.1f us each)", table, fn, a.count, b.count, ms(a.max), ms(b.max), ms(a.total), ms(b.total), (a.total-b.total)/float64(max(b.count, 1))/1e3))
			}
		}
		verdict := "agree (counts equal; times not compared: see the hold test)"
		if inlined {
			verdict = "each between half the truth and the truth (callers from stacks vary on 7.x)"
		}
		vmtest.Summary(t, "side-by-side klockstat on %s: fentrygen | libbpf-tools: %s | %s | ground truth: %s (pipe_write's mutex) %d, %s (pipe_read's) >= %d (n=%d pairs, %d writers x %d bytes, %d reads)",
			fruntime.KernelRelease(), strings.Join(summary, "; "), verdict, write, n+writers*m, read, n+reads, n, writers, m, reads)
	})
}

// blockedInRead waits until thread tid sleeps in read(2), and returns
// when it saw it so.
func blockedInRead(t *testing.T, tid int) time.Time {
	t.Helper()
	for {
		stat, err1 := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
		sc, err2 := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/syscall", tid))
		require.NoError(t, err1)
		require.NoError(t, err2)
		state := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))[0]
		if state == "S" && strings.HasPrefix(string(sc), fmt.Sprintf("%d ", unix.SYS_READ)) {
			return time.Now()
		}
		time.Sleep(time.Millisecond)
	}
}

// ttyReader reads a line from the pty's slave on a thread of its own, and
// returns that thread's id and when the read returned.
func ttyReader(slave int) (tid int, done <-chan time.Time) {
	tids, times := make(chan int), make(chan time.Time, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		buf := make([]byte, 16)
		if _, err := unix.Read(slave, buf); err != nil {
			panic(err)
		}
		times <- time.Now()
	}()
	return <-tids, times
}

// TestVMSideBySideHold times a known contention: n_tty_read holds the
// tty's atomic_read_lock (mutex_lock_interruptible) while it sleeps for
// input. Reader 1 blocks reading a pty's slave, holding the mutex; reader
// 2 then reads it too and sleeps waiting for the mutex; d later a line
// arrives on the master for reader 1, which returns, so reader 2 takes
// the mutex and sleeps for input in turn, until a line for it arrives d
// after it was seen asleep.
//
// Ground truth, for the row of that lock site (the caller of n_tty_read;
// it also counts n_tty_read's brief termios_rwsem reads): bounds on each
// wait and hold from the instants the test saw (a thread started, seen
// asleep in read(2), a line written, a read returned): the max wait is
// reader 2's, the max hold the longer of the readers', the total hold
// theirs plus at most 10 ms of rwsem reads.
//
// Agreement: both watch the same calls, so the counts are equal; the
// probes' microseconds are lost in these hundreds of milliseconds, so the
// max and total times agree within 2%.
func TestVMSideBySideHold(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const d, rwsem = 200 * time.Millisecond, 10 * time.Millisecond
		master, slave := vmtest.Pty(t)
		var wait, hold1, hold2 [2]time.Duration // lower and upper bounds
		ours, theirs := sideBySide(t, nil, klockstat.Options{}, func() {
			line := func(s string) (before, after time.Time) {
				before = time.Now()
				_, err := unix.Write(master, []byte(s))
				require.NoError(t, err)
				return before, time.Now()
			}
			a0 := time.Now()
			tid1, done1 := ttyReader(slave)
			t0 := blockedInRead(t, tid1) // holds the mutex
			a1 := time.Now()
			tid2, done2 := ttyReader(slave)
			t1 := blockedInRead(t, tid2) // waits for it
			time.Sleep(time.Until(t1.Add(d)))
			wa, _ := line("a\n")
			r1 := <-done1
			t2 := blockedInRead(t, tid2) // holds it
			time.Sleep(time.Until(t2.Add(d)))
			wb, _ := line("b\n")
			r2 := <-done2
			hold1 = [2]time.Duration{wa.Sub(t0), r1.Sub(a0)}
			wait = [2]time.Duration{wa.Sub(t1), t2.Sub(a1)}
			hold2 = [2]time.Duration{wb.Sub(t2), r2.Sub(wa)}
		})
		o, th := parse(t, ours), parse(t, theirs)
		bounds := map[string][4]time.Duration{ // max low, high; total low, high
			"Wait": {wait[0], wait[1], wait[0], wait[1] + rwsem},
			"Hold": {max(hold1[0], hold2[0]), max(hold1[1], hold2[1]), hold1[0] + hold2[0], hold1[1] + hold2[1] + rwsem},
		}
		var summary []string
		var name string
		for _, table := range []string{"Wait", "Hold"} {
			// The tty read row: the only one of d or longer.
			long := func(rows map[string]agg) []string {
				var out []string
				for fn, a := range rows {
					if a.max >= float64(d) {
						out = append(out, fn)
					}
				}
				sort.Strings(out)
				return out
			}
			lo, lt := long(o[table]), long(th[table])
			require.Len(t, lo, 1, "fentrygen %s: one row of %v or more", table, d)
			require.Equal(t, lo, lt, "%s: the same row", table)
			name = lo[0]
			a, b := o[table][name], th[table][name]
			if name == "tty_read" {
				assert.Equal(t, b.count, a.count, "%s %s count", table, name)
				assert.InDelta(t, b.total, a.total, 0.02*b.total, "%s %s total", table, name)
			} else {
				// 7.x inlines tty_read: the row is vfs_read, where the
				// original also counts this process's reads of /proc
				// before the port attached, and each tool's short reads
				// carry the other's programs: the totals differ by more
				// than the tty's; each is held to the truth below.
				assert.LessOrEqual(t, a.count, b.count, "%s %s count", table, name)
			}
			assert.InDelta(t, b.max, a.max, 0.02*b.max, "%s %s max", table, name)
			bd := bounds[table]
			// Printed times have 4 digits at most: 0.1% more room.
			for who, x := range map[string]agg{"fentrygen": a, "libbpf-tools": b} {
				assert.GreaterOrEqual(t, x.max, 0.999*float64(bd[0]), "%s %s max", who, table)
				assert.LessOrEqual(t, x.max, 1.001*float64(bd[1]), "%s %s max", who, table)
				assert.GreaterOrEqual(t, x.total, 0.999*float64(bd[2]), "%s %s total", who, table)
				assert.LessOrEqual(t, x.total, 1.001*float64(bd[3]), "%s %s total", who, table)
			}
			summary = append(summary, fmt.Sprintf("%s count %d/%d max %s/%s total %s/%s (truth: max %s..%s, total %s..%s)", table, a.count, b.count, ms(a.max), ms(b.max), ms(a.total), ms(b.total),
				ms(float64(bd[0])), ms(float64(bd[1])), ms(float64(bd[2])), ms(float64(bd[3]))))
		}
		vmtest.Summary(t, "side-by-side klockstat (tty hold) on %s: fentrygen | libbpf-tools, row %s: %s | agree (counts equal, times within 2%%) | ground truth: bounds from the instants seen, d=%v",
			fruntime.KernelRelease(), name, strings.Join(summary, "; "), d)
	})
}

func keys(m map[string]agg) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ms(ns float64) string { return fmt.Sprintf("%.3gms", ns/1e6) }
