package tcpsynbl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are tcpsynbl's command line: tcpsynbl [-T] [-4] [-6] [interval [count]].
type Options struct {
	// Timestamp prints the time before each interval's histograms (-T).
	Timestamp bool
	// IPv4 and IPv6 trace one family only (-4, -6; -4 wins when both are set).
	IPv4, IPv6 bool
	// Interval between prints, in seconds; 0 prints only when ctx is done.
	Interval int
	// Count of prints; 0 prints until ctx is done.
	Count int
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// load attaches to tcp_v4_syn_recv_sock and tcp_v6_syn_recv_sock, or where
// no trampoline takes their 7 arguments (x86-64 before Linux 6.6; the
// original falls back to kprobes there) to inet_csk_complete_hashdance,
// which sees the same listeners of both families but for connections the
// full accept queue refused, and v4-mapped ones counted once, not twice.
func load(opts Options) (*Objects, error) {
	only := []string{"onV4", "onV6"}
	switch {
	case opts.IPv4:
		only = only[:1]
	case opts.IPv6:
		only = only[1:]
	}
	objs, err := Load(runtime.Options{Only: only})
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return objs, err
	}
	Family = 0
	switch {
	case opts.IPv4:
		Family = unix.AF_INET
	case opts.IPv6:
		Family = unix.AF_INET6
	}
	return Load(runtime.Options{Only: []string{"onQueue"}})
}

// Run loads the probes and prints, every interval and once more when ctx
// is done, the backlog histograms of each maximum backlog seen since the
// previous print, as libbpf-tools' tcpsynbl does.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	objs, err := load(opts)
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	fmt.Fprintf(w, "Tracing SYN backlog size. Ctrl-C to end.\n")
	var tick <-chan time.Time
	if opts.Interval > 0 {
		t := time.NewTicker(time.Duration(opts.Interval) * time.Second)
		defer t.Stop()
		tick = t.C
	}
	for n := 1; ; n++ {
		done := false
		select {
		case <-ctx.Done():
			done = true
		case <-tick:
		}
		fmt.Fprintln(w)
		if opts.Timestamp {
			fmt.Fprintf(w, "%-8s\n", time.Now().Format("15:04:05"))
		}
		hists, err := objs.Backlogs.Histograms()
		if err != nil {
			return err
		}
		keys := make([]uint32, 0, len(hists))
		for k := range hists {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "backlog_max = %d\n", k)
			hists[k].Print(w, "backlog")
		}
		if err := objs.Backlogs.Clear(); err != nil {
			return err
		}
		if done || n == opts.Count {
			return nil
		}
	}
}
