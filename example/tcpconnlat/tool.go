package tcpconnlat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/inet"
	"github.com/fentrygen/fentrygen/runtime"
)

// Options are tcpconnlat's command line: tcpconnlat [-t] [-p PID] [-L] [min_ms].
type Options struct {
	// Pid traces this process only (-p); 0 traces all.
	Pid uint32
	// MinUs drops connects faster than this many microseconds (the
	// min_ms argument times 1000); 0 keeps all.
	MinUs uint64
	// Timestamp prints seconds since the first event (-t).
	Timestamp bool
	// Lport prints the local port (-L).
	Lport bool
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run loads the probes and prints a line per connect until ctx is done, as
// libbpf-tools' tcpconnlat does.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	OnlyPid, MinUs = opts.Pid, opts.MinUs
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	if opts.Timestamp {
		fmt.Fprintf(w, "%-9s ", "TIME(s)")
	}
	if opts.Lport {
		fmt.Fprintf(w, "%-6s %-12s %-2s %-16s %-6s %-16s %-5s %s\n", "PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT", "LAT(ms)")
	} else {
		fmt.Fprintf(w, "%-6s %-12s %-2s %-16s %-16s %-5s %s\n", "PID", "COMM", "IP", "SADDR", "DADDR", "DPORT", "LAT(ms)")
	}
	var startUs uint64
	for e, err := range objs.EventReader.Records(ctx) {
		if err != nil {
			return err
		}
		if opts.Timestamp {
			if startUs == 0 {
				startUs = e.Ts / 1000
			}
			fmt.Fprintf(w, "%-9.3f ", float64(e.Ts/1000-startUs)/1e6)
		}
		var ip int
		var src, dst string
		switch e.Af {
		case unix.AF_INET:
			ip, src, dst = 4, inet.Ntoa(e.Saddr4), inet.Ntoa(e.Daddr4)
		case unix.AF_INET6:
			ip, src, dst = 6, inet.Ntop(unix.AF_INET6, e.Saddr6[:]), inet.Ntop(unix.AF_INET6, e.Daddr6[:])
		default:
			fmt.Fprintf(os.Stderr, "broken event: event->af=%d", e.Af)
			continue
		}
		comm, _, _ := bytes.Cut(e.Comm[:], []byte{0})
		if opts.Lport {
			fmt.Fprintf(w, "%-6d %-12.12s %-2d %-16s %-6d %-16s %-5d %.2f\n", e.Tgid, comm, ip, src, e.Lport, dst, inet.Ntohs(e.Dport), float64(e.DeltaUs)/1000)
		} else {
			fmt.Fprintf(w, "%-6d %-12.12s %-2d %-16s %-16s %-5d %.2f\n", e.Tgid, comm, ip, src, dst, inet.Ntohs(e.Dport), float64(e.DeltaUs)/1000)
		}
	}
	return nil
}
