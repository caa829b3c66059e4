package vfsstat

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are vfsstat's command line: vfsstat [interval [count]].
type Options struct {
	// Interval between lines, in seconds (default 1).
	Interval int
	// Count of lines; 0 prints until ctx is done.
	Count int
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run loads the probes and prints, every interval, the calls per second
// since the previous line, as libbpf-tools' vfsstat does.
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
	fmt.Fprintf(w, "%-8s  ", "TIME")
	for _, name := range []string{"READ", "WRITE", "FSYNC", "OPEN", "CREATE"} {
		fmt.Fprintf(w, " %6s/s", name)
	}
	fmt.Fprintln(w)
	var prev Stats
	tick := time.NewTicker(time.Duration(opts.Interval) * time.Second)
	defer tick.Stop()
	for n := 0; opts.Count == 0 || n < opts.Count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, _, err := objs.Stats.Lookup(0)
		if err != nil {
			return err
		}
		// Cumulative counters: a line is the difference, so no call is lost
		// between reading and resetting.
		fmt.Fprintf(w, "%-8s: ", time.Now().Format("15:04:05"))
		for _, d := range []uint64{cur.Read - prev.Read, cur.Write - prev.Write, cur.Fsync - prev.Fsync, cur.Open - prev.Open, cur.Create - prev.Create} {
			fmt.Fprintf(w, " %8d", d/uint64(opts.Interval))
		}
		fmt.Fprintln(w)
		prev = cur
	}
	return nil
}
