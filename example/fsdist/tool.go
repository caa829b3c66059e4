package fsdist

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are fsdist's command line: fsdist [-t ext4] [-T] [-m] [-p PID]
// [interval [count]].
type Options struct {
	// Pid, if not zero, traces only this process (-p).
	Pid int
	// Milliseconds makes the histograms count msecs, not usecs (-m).
	Milliseconds bool
	// Timestamp prints the time above each set of histograms (-T).
	Timestamp bool
	// Interval between histograms, in seconds (default 99999999).
	Interval int
	// Count of intervals; 0 prints until ctx is done.
	Count int
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

var opNames = []string{Read: "read", Write: "write", Open: "open", Fsync: "fsync", Getattr: "getattr"}

// Run loads the probes and prints, every interval and once more when ctx
// is done, each operation's histogram of the latencies since the previous
// print, as libbpf-tools' fsdist does. Runs must not overlap: the probes
// are built from package variables.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	if opts.Interval <= 0 {
		opts.Interval = 99999999
	}
	units := "usecs"
	targetTgid, unitNs = uint32(opts.Pid), 1000
	if opts.Milliseconds {
		units, unitNs = "msecs", 1000000
	}
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	fmt.Fprintf(w, "Tracing ext4 operation latency... Hit Ctrl-C to end.\n")
	// The kernel's histograms are cumulative; each print shows the
	// difference from the previous one, so no sample is lost to a reset.
	prev := map[uint32]runtime.Histogram{}
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(opts.Interval) * time.Second):
		}
		fmt.Fprintln(w)
		if opts.Timestamp {
			fmt.Fprintf(w, "%-8s\n", time.Now().Format("15:04:05"))
		}
		cur, err := objs.Hists.Histograms()
		if err != nil {
			return err
		}
		for op, name := range opNames {
			h, ok := cur[uint32(op)]
			if !ok {
				continue
			}
			d := runtime.Histogram{Kind: h.Kind, Slots: make([]uint64, len(h.Slots))}
			for i, v := range h.Slots {
				if old := prev[uint32(op)].Slots; old != nil {
					v -= old[i]
				}
				d.Slots[i] = v
			}
			if d.Total() == 0 {
				continue
			}
			fmt.Fprintf(w, "operation = '%s'\n", name)
			d.Print(w, units)
			fmt.Fprintln(w)
		}
		prev = cur
		if ctx.Err() != nil || n == opts.Count {
			return nil
		}
	}
}
