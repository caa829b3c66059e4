package sessionlat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fentrygen/fentrygen/example/funclatency"
	"github.com/fentrygen/fentrygen/runtime"
)

// Units are what latencies are counted in: funclatency's -u and -m.
type Units = funclatency.Units

// The units, as funclatency names them.
const (
	Nsec = funclatency.Nsec
	Usec = funclatency.Usec
	Msec = funclatency.Msec
)

// Options are funclatency's command line:
// sessionlat [-m|-u] [-p PID] [-i INTERVAL] [-d DURATION] [-T] [-pair] FUNCTION.
type Options struct {
	// Func is the kernel function to time.
	Func string
	// Units of the histogram (-u, -m; default Nsec).
	Units Units
	// Pid, if not zero, times only this process's calls (-p).
	Pid int
	// Interval between histograms, in seconds (-i; default 99999999).
	Interval int
	// Duration, if not zero, ends the trace after so many seconds (-d).
	Duration int
	// Timestamp prints the time above each histogram (-T).
	Timestamp bool
	// Pair loads the probe as an fentry+fexit pair even where the kernel
	// has fsession (-pair), to compare the two.
	Pair bool
	// Attached, if set, is called once the probe is attached, with how it
	// got into the kernel.
	Attached func(runtime.Mechanism)
}

// Run attaches the fsession probe to opts.Func and prints the histogram
// of its latencies, cumulative, every interval and once more when ctx is
// done, as libbpf-tools' funclatency does. Runs must not overlap: the
// probe is built from package variables.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	if opts.Func == "" {
		return errors.New("need a function to trace")
	}
	if strings.Contains(opts.Func, ":") {
		return fmt.Errorf("%s: only kernel functions can be traced (no uprobes)", opts.Func)
	}
	if opts.Interval <= 0 {
		opts.Interval = 99999999
	}
	iterations := 99999999
	if opts.Duration > 0 {
		opts.Interval = min(opts.Interval, opts.Duration)
		iterations = opts.Duration / opts.Interval
	}
	targetTgid, unitNs = uint32(opts.Pid), opts.Units.Nanos()
	objs, err := Load(runtime.Options{Retarget: map[string]string{"onCall": opts.Func}, SessionPair: opts.Pair})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached(objs.Mechanism("onCall"))
	}
	fmt.Fprintf(w, "Tracing %s.  Hit Ctrl-C to exit\n", opts.Func)
	for i := 0; i < iterations && ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(opts.Interval) * time.Second):
		}
		fmt.Fprintln(w)
		if opts.Timestamp {
			fmt.Fprintf(w, "%-8s\n", time.Now().Format("15:04:05"))
		}
		h, err := objs.Hist.Histogram()
		if err != nil {
			return err
		}
		h.Print(w, opts.Units.String())
	}
	fmt.Fprintf(w, "Exiting trace of %s\n", opts.Func)
	return nil
}
