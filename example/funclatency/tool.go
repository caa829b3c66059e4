package funclatency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Units are what latencies are counted in: funclatency's -u and -m.
type Units int

const (
	Nsec Units = iota
	Usec
	Msec
)

func (u Units) String() string { return [...]string{"nsec", "usec", "msec"}[u] }

// Nanos is how many nanoseconds one unit is.
func (u Units) Nanos() uint64 { return [...]uint64{1, 1000, 1000000}[u] }

// Options are funclatency's command line:
// funclatency [-m|-u] [-p PID] [-i INTERVAL] [-d DURATION] [-T] FUNCTION.
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
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run attaches fentry and fexit to opts.Func and prints the histogram of
// its latencies, cumulative, every interval and once more when ctx is done,
// as libbpf-tools' funclatency does. Runs must not overlap: the probes are
// built from package variables.
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
	objs, err := Load(runtime.Options{Retarget: map[string]string{"onEntry": opts.Func, "onExit": opts.Func}})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
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
