package cachestat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are cachestat's command line: cachestat [-T] [interval [count]].
type Options struct {
	// Interval between lines, in seconds (default 1).
	Interval int
	// Count of lines; 0 prints until ctx is done.
	Count int
	// Timestamp starts each line with the time (-T).
	Timestamp bool
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run loads the probes and prints, every interval, the page cache hits,
// misses and dirtied buffers of the interval (not per second), the hit
// ratio, and the sizes of the buffer and page caches, as libbpf-tools'
// cachestat does. When ctx is done it prints the interval so far, then
// returns.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	if opts.Interval <= 0 {
		opts.Interval = 1
	}
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	if opts.Timestamp {
		fmt.Fprintf(w, "%-8s ", "TIME")
	}
	fmt.Fprintf(w, "%8s %8s %8s %8s %12s %10s\n", "HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB", "CACHED_MB")
	var prev Stats
	tick := time.NewTicker(time.Duration(opts.Interval) * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		done := false
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		// The counters are cumulative: a line is the difference, so no
		// event is lost between reading and resetting.
		cur, _, err := objs.Stats.Lookup(0)
		if err != nil {
			return err
		}
		total, misses, mbd := max(cur.Total-prev.Total, 0), max(cur.Misses-prev.Misses, 0), cur.Mbd-prev.Mbd
		prev = cur
		hits := total - misses
		// Read-ahead may add more pages than are accessed.
		if hits < 0 {
			misses, hits = total, 0
		}
		var ratio float32 // C's float, as printed
		if total > 0 {
			ratio = float32(float64(hits) / float64(total))
		}
		buffers, cached, err := meminfo()
		if err != nil {
			return fmt.Errorf("failed to get meminfo: %w", err)
		}
		if opts.Timestamp {
			fmt.Fprintf(w, "%-8s ", time.Now().Format("15:04:05"))
		}
		fmt.Fprintf(w, "%8d %8d %8d %7.2f%% %12d %10d\n", hits, misses, mbd, float64(100*ratio), buffers/1024, cached/1024)
		if done || n == opts.Count {
			return nil
		}
	}
}

// meminfo reads the Buffers and Cached lines of /proc/meminfo, in kB.
func meminfo() (buffers, cached uint64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() && found < 2 {
		name, rest, _ := strings.Cut(sc.Text(), ":")
		var dst *uint64
		switch name {
		case "Buffers":
			dst = &buffers
		case "Cached":
			dst = &cached
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/meminfo: %s: %w", name, err)
		}
		found++
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("/proc/meminfo: no Buffers or Cached")
	}
	return buffers, cached, sc.Err()
}
