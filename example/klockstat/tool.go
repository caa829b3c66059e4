package klockstat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Sort is a column the tables are sorted by, largest first (-S).
type Sort int

const (
	SortMax Sort = iota
	SortCount
	SortTotal
)

// Options are klockstat's command line: klockstat [-PRT] [-p PID] [-t TID]
// [-c FUNC] [-L LOCK] [-n NR_LOCKS] [-s NR_STACKS] [-S SORT] [-d DURATION]
// [-i INTERVAL].
type Options struct {
	// Pid and Tid, if not zero, trace only this process or thread (-p, -t).
	Pid, Tid int
	// Caller, if set, prints only the stacks whose caller's name starts
	// with it (-c).
	Caller string
	// Lock, if set, traces only this lock: a kernel symbol or a 0x address
	// (-L).
	Lock string
	// Locks is how many locks or threads each table shows (-n; default
	// 99999999), Stacks how many frames of each stack (-s; default 1).
	Locks, Stacks int
	// SortAcq and SortHld order the wait and the hold tables (-S
	// acq_max|acq_count|acq_total,hld_...; default the max).
	SortAcq, SortHld Sort
	// Duration ends the trace after so many seconds (-d), Interval prints
	// the tables every so many (-i; default 99999999); ctx done ends it
	// too, after one more print.
	Duration, Interval int
	// Reset clears the stats after each print (-R).
	Reset bool
	// Timestamp prints the time above the tables (-T).
	Timestamp bool
	// PerThread keeps stats by thread, not by stack (-P).
	PerThread bool
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// ParseSort reads -S: one or two of acq_max, acq_count, acq_total,
// hld_max, hld_count, hld_total, comma-separated.
func ParseSort(s string, opts *Options) error {
	for _, one := range strings.SplitN(s, ",", 2) {
		table, field, _ := strings.Cut(one, "_")
		sort, ok := map[string]Sort{"max": SortMax, "count": SortCount, "total": SortTotal}[field]
		switch {
		case ok && table == "acq":
			opts.SortAcq = sort
		case ok && table == "hld":
			opts.SortHld = sort
		default:
			return fmt.Errorf("Bad sort string: %s", s)
		}
	}
	return nil
}

// Run loads the probes and prints the wait and hold tables every
// interval (cumulative unless Reset), and once more when ctx is done, as
// libbpf-tools' klockstat does. Runs must not overlap: the probes are built
// from package variables.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	if opts.PerThread && opts.Stacks > 1 {
		return errors.New("--per-thread and --stacks cannot be used together")
	}
	if opts.Locks <= 0 {
		opts.Locks = 99999999
	}
	if opts.Stacks <= 0 {
		opts.Stacks = 1
	}
	if opts.Interval <= 0 {
		opts.Interval = 99999999
	}
	iterations := 99999999
	if opts.Duration > 0 {
		opts.Interval = min(opts.Interval, opts.Duration)
		iterations = opts.Duration / opts.Interval
	}
	syms, err := loadKsyms()
	if err != nil {
		return fmt.Errorf("failed to load kallsyms: %w", err)
	}
	targetLock = 0
	if opts.Lock != "" {
		if s := syms.get(opts.Lock); s != nil {
			targetLock = s.addr
		} else if hex, ok := strings.CutPrefix(opts.Lock, "0x"); ok {
			targetLock, _ = strconv.ParseUint(hex, 16, 64)
		}
		if targetLock == 0 {
			return fmt.Errorf("failed to find lock %s", opts.Lock)
		}
	}
	targetTgid, targetTid, perThread = uint32(opts.Pid), uint32(opts.Tid), opts.PerThread
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	fmt.Fprintf(w, "Tracing mutex/sem lock events...  Hit Ctrl-C to end\n")
	for i := 0; i < iterations && ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(opts.Interval) * time.Second):
		}
		fmt.Fprintln(w)
		if opts.Timestamp {
			fmt.Fprintf(w, "%-8s\n", time.Now().Format("15:04:05"))
		}
		if err := printStats(w, objs, syms, opts); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "Exiting trace of mutex/sem locks\n")
	return nil
}

// stackStat is one row: a stack (or thread) and its stats.
type stackStat struct {
	id uint32
	s  LockStat
	bt []uint64
}

func (ss *stackStat) caller(syms ksyms, perThread bool) string {
	if perThread {
		return fmt.Sprintf("%d  %16s", ss.id, comm(ss.s.AcqMaxComm))
	}
	var pc uint64
	if len(ss.bt) > 0 {
		pc = ss.bt[0]
	}
	return syms.symname(pc)
}

func printStats(w io.Writer, objs *Objects, syms ksyms, opts Options) error {
	entries, err := objs.Stats.Entries()
	if err != nil {
		return err
	}
	var rows []*stackStat
	for id, s := range entries {
		ss := &stackStat{id: id, s: s}
		if !opts.PerThread {
			// A stack that cannot be read still prints, as an unknown
			// caller.
			ss.bt, _, _ = objs.Stacks.Stack(id)
			if opts.Caller != "" && len(ss.bt) > 0 {
				if sym := syms.mapAddr(ss.bt[0]); sym != nil && !strings.HasPrefix(sym.name, opts.Caller) {
					continue
				}
			}
		}
		rows = append(rows, ss)
	}
	// Ties in hash order, as the original's qsort leaves them.
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	n := min(opts.Locks, len(rows))
	tables := []struct {
		what, word string
		by         Sort
		pick       func(s *LockStat) (count, total, max, maxID, maxLock uint64, maxComm [16]byte)
	}{
		{"Wait", "acq", opts.SortAcq, func(s *LockStat) (uint64, uint64, uint64, uint64, uint64, [16]byte) {
			return s.AcqCount, s.AcqTotalTime, s.AcqMaxTime, s.AcqMaxID, s.AcqMaxLockPtr, s.AcqMaxComm
		}},
		{"Hold", "hld", opts.SortHld, func(s *LockStat) (uint64, uint64, uint64, uint64, uint64, [16]byte) {
			return s.HldCount, s.HldTotalTime, s.HldMaxTime, s.HldMaxID, s.HldMaxLockPtr, s.HldMaxComm
		}},
	}
	for _, tab := range tables {
		key := func(ss *stackStat) uint64 {
			count, total, max, _, _, _ := tab.pick(&ss.s)
			return [...]uint64{SortMax: max, SortCount: count, SortTotal: total}[tab.by]
		}
		sort.SliceStable(rows, func(i, j int) bool { return key(rows[i]) > key(rows[j]) })
		for i, ss := range rows[:n] {
			if i == 0 || opts.Stacks > 1 {
				if opts.PerThread {
					fmt.Fprintf(w, "\n                Tid              Comm")
				} else {
					fmt.Fprintf(w, "\n                               Caller")
				}
				fmt.Fprintf(w, "  Avg %s    Count   Max %s   Total %s\n", tab.what, tab.what, tab.what)
			}
			count, total, max, maxID, maxLock, maxComm := tab.pick(&ss.s)
			fmt.Fprintf(w, "%37s %9s %8d %10s %12s\n", ss.caller(syms, opts.PerThread), printTime(total/count), count, printTime(max), printTime(total))
			if opts.PerThread {
				continue
			}
			for j := 1; j < min(opts.Stacks, runtime.StackDepth) && j < len(ss.bt); j++ {
				fmt.Fprintf(w, "%37s\n", syms.symname(ss.bt[j]))
			}
			if opts.Stacks > 1 {
				fmt.Fprintf(w, "                              Max PID %d, COMM %s, Lock %s (0x%x)\n", maxID>>32, comm(maxComm), syms.lockName(maxLock), maxLock)
			}
		}
	}
	if opts.Reset {
		for _, ss := range rows {
			if err := objs.Stats.Delete(ss.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// printTime is klockstat's print_time: the largest unit the time reaches,
// one decimal, computed in C's float; nanoseconds as an integer.
func printTime(ns uint64) string {
	for _, u := range []struct {
		base float32
		unit string
	}{{1e9 * 3600, "h "}, {1e9 * 60, "m "}, {1e9, "s "}, {1e6, "ms"}, {1e3, "us"}} {
		if float32(ns) >= u.base {
			return fmt.Sprintf("%.1f %s", float64(float32(ns)/u.base), u.unit)
		}
	}
	return fmt.Sprintf("%d ns", uint32(ns))
}

// comm is a NUL-padded comm as a string.
func comm(b [16]byte) string {
	s := string(b[:])
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}
