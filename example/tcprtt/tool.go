package tcprtt

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/fentrygen/fentrygen/internal/inet"
	"github.com/fentrygen/fentrygen/runtime"
)

// Options are tcprtt's command line: tcprtt [-i INTERVAL] [-d DURATION]
// [-T] [-m] [-p LPORT] [-P RPORT] [-a LADDR] [-A RADDR] [-b] [-B] [-e].
type Options struct {
	// Interval between prints, in seconds (-i); 0 prints only when ctx
	// is done (the original's default, 99999999 s).
	Interval int
	// Duration stops tracing at the first print this many seconds after
	// the start (-d); 0 runs until ctx is done.
	Duration int
	// Timestamp prints the time before each interval's histograms (-T).
	Timestamp bool
	// Millisec histograms milliseconds, not microseconds (-m).
	Millisec bool
	// Lport and Rport keep sockets with this local or remote port
	// (-p, -P); 0 keeps all.
	Lport, Rport uint16
	// Laddr and Raddr keep sockets with this local or remote IPv4
	// address (-a, -A); the zero Addr keeps all.
	Laddr, Raddr netip.Addr
	// ByLaddr and ByRaddr print a histogram per local or remote address
	// (-b, -B).
	ByLaddr, ByRaddr bool
	// Extended prints each histogram's average (-e).
	Extended bool
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run loads the probes and prints the RTT histograms every interval and
// once more when ctx is done, as libbpf-tools' tcprtt does.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	Lport, Rport = inet.Htons(opts.Lport), inet.Htons(opts.Rport)
	Laddr, Raddr = 0, 0
	if opts.Laddr.IsValid() {
		Laddr = inet.Be32(opts.Laddr)
	}
	if opts.Raddr.IsValid() {
		Raddr = inet.Be32(opts.Raddr)
	}
	ByLaddr, ByRaddr, Extended, Millisec = opts.ByLaddr, opts.ByRaddr, opts.Extended, opts.Millisec
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	fmt.Fprint(w, "Tracing TCP RTT")
	if opts.Duration > 0 {
		fmt.Fprintf(w, " for %d secs.\n", opts.Duration)
	} else {
		fmt.Fprint(w, "... Hit Ctrl-C to end.\n")
	}
	end := time.Now().Add(time.Duration(opts.Duration) * time.Second)
	var tick <-chan time.Time
	if opts.Interval > 0 {
		t := time.NewTicker(time.Duration(opts.Interval) * time.Second)
		defer t.Stop()
		tick = t.C
	}
	unit := "usecs"
	if opts.Millisec {
		unit = "msecs"
	}
	for {
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
		hists, err := objs.Hists.Histograms()
		if err != nil {
			return err
		}
		for _, key := range slices.Sorted(maps.Keys(hists)) {
			switch {
			case opts.ByLaddr:
				fmt.Fprintf(w, "Local Address = %s ", inet.Ntoa(uint32(key)))
			case opts.ByRaddr:
				fmt.Fprintf(w, "Remote Address = %s ", inet.Ntoa(uint32(key)))
			default:
				fmt.Fprint(w, "All Addresses = ****** ")
			}
			if opts.Extended {
				ext, _, err := objs.Exts.Lookup(key)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "[AVG %d]", ext.Latency/max(ext.Cnt, 1))
			}
			fmt.Fprintln(w)
			hists[key].Print(w, unit)
		}
		if err := objs.Hists.Clear(); err != nil {
			return err
		}
		if err := objs.Exts.Clear(); err != nil {
			return err
		}
		if done || opts.Duration > 0 && time.Now().After(end) {
			return nil
		}
	}
}
