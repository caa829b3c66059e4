package readahead

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are readahead's command line: readahead [-d DURATION].
type Options struct {
	// Duration, if not zero, ends the trace after so many seconds (-d);
	// otherwise it ends when ctx is done (Ctrl-C).
	Duration int
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run loads the probes, waits for the duration or ctx, and prints what
// libbpf-tools' readahead prints: the pages read ahead and not accessed
// since, out of all read ahead, and the histogram of the milliseconds from
// read-ahead to first access.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	fmt.Fprintf(w, "Tracing fs read-ahead ... Hit Ctrl-C to end.\n")
	var timeout <-chan time.Time
	if opts.Duration > 0 {
		timeout = time.After(time.Duration(opts.Duration) * time.Second)
	}
	select {
	case <-ctx.Done():
	case <-timeout:
	}
	fmt.Fprintln(w)
	c, _, err := objs.Counts.Lookup(0)
	if err != nil {
		return err
	}
	h, err := objs.Hist.Histogram()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Readahead unused/total pages: %d/%d\n", c.Unused, c.Total)
	h.Print(w, "msecs")
	return nil
}
