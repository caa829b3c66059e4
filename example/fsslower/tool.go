package fsslower

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are fsslower's command line: fsslower [-t ext4] [-p PID] [-m MIN]
// [-d DURATION] [-c].
type Options struct {
	// Pid, if not zero, traces only this process (-p).
	Pid int
	// MinMs is the latency in milliseconds an operation must exceed to be
	// shown (-m; the command's default is 10); 0 shows every operation.
	MinMs uint64
	// Duration, if not zero, ends the trace after so many seconds (-d).
	Duration int
	// CSV prints comma-separated values (-c).
	CSV bool
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

var opChars = []byte{Read: 'R', Write: 'W', Open: 'O', Fsync: 'F'}

// Run loads the probes and prints one line per operation slower than
// opts.MinMs, as libbpf-tools' fsslower does, until ctx is done or the
// duration has passed; events already sent when it stops are printed.
// Runs must not overlap: the probes are built from package variables.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	targetTgid, minLatNs = uint32(opts.Pid), opts.MinMs*1000000
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	switch {
	case opts.CSV:
		fmt.Fprintf(w, "ENDTIME_ns,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE\n")
	default:
		if opts.MinMs != 0 {
			fmt.Fprintf(w, "Tracing ext4 operations slower than %d ms", opts.MinMs)
		} else {
			fmt.Fprintf(w, "Tracing ext4 operations")
		}
		if opts.Duration != 0 {
			fmt.Fprintf(w, " for %d secs.\n", opts.Duration)
		} else {
			fmt.Fprintf(w, "... Hit Ctrl-C to end.\n")
		}
		fmt.Fprintf(w, "%-8s %-16s %-7s %1s %-7s %-8s %7s %s\n", "TIME", "COMM", "PID", "T", "BYTES", "OFF_KB", "LAT(ms)", "FILENAME")
	}
	if opts.Duration != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(opts.Duration)*time.Second)
		defer cancel()
	}
	for e, err := range objs.EventReader.Records(ctx) {
		if err != nil {
			return err
		}
		printEvent(w, e, opts.CSV)
	}
	if lost, err := objs.EventReader.Lost(); err == nil && lost > 0 {
		fmt.Fprintf(w, "lost %d events\n", lost)
	}
	return nil
}

// printEvent writes one event as fsslower's handle_event does.
func printEvent(w io.Writer, e Event, csv bool) {
	task, _, _ := bytes.Cut(e.Task[:], []byte{0})
	file, _, _ := bytes.Cut(e.File[:], []byte{0})
	size := fmt.Sprint(e.Size)
	if e.Size == math.MaxInt64 {
		size = "LL_MAX"
	}
	if csv {
		fmt.Fprintf(w, "%d,%s,%d,%c,%s,%d,%d,%s\n", e.EndNs, task, e.Pid, opChars[e.Op], size, e.Offset, e.DeltaUs, file)
		return
	}
	fmt.Fprintf(w, "%-8s %-16s %-7d %c %-7s %-8d %7.2f %s\n", time.Now().Format("15:04:05"), task, e.Pid, opChars[e.Op], size, e.Offset/1024, float64(e.DeltaUs)/1000, file)
}
