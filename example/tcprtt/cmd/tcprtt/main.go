// Command tcprtt summarizes TCP round-trip times as histograms, like
// libbpf-tools' tcprtt: tcprtt [-i INTERVAL] [-d DURATION] [-T] [-m]
// [-p LPORT] [-P RPORT] [-a LADDR] [-A RADDR] [-b] [-B] [-e].
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/tcprtt"
)

// addr is a flag.Value for an IPv4 address.
type addr struct{ a *netip.Addr }

func (f addr) String() string {
	if f.a == nil || !f.a.IsValid() {
		return ""
	}
	return f.a.String()
}

func (f addr) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return fmt.Errorf("not an IPv4 address: %q", s)
	}
	*f.a = a
	return nil
}

func main() {
	var opts tcprtt.Options
	flag.IntVar(&opts.Interval, "i", 0, "summary interval, seconds")
	flag.IntVar(&opts.Duration, "d", 0, "total duration of trace, seconds")
	flag.BoolVar(&opts.Timestamp, "T", false, "include timestamp on output")
	flag.BoolVar(&opts.Millisec, "m", false, "millisecond histogram")
	lport := flag.Uint("p", 0, "filter for local port")
	rport := flag.Uint("P", 0, "filter for remote port")
	flag.Var(addr{&opts.Laddr}, "a", "filter for local address")
	flag.Var(addr{&opts.Raddr}, "A", "filter for remote address")
	flag.BoolVar(&opts.ByLaddr, "b", false, "show sockets histogram by local address")
	flag.BoolVar(&opts.ByRaddr, "B", false, "show sockets histogram by remote address")
	flag.BoolVar(&opts.Extended, "e", false, "show extension summary(average)")
	flag.Parse()
	if flag.NArg() > 0 || opts.Interval < 0 || opts.Duration < 0 || *lport > 65535 || *rport > 65535 {
		flag.Usage()
		os.Exit(2)
	}
	opts.Lport, opts.Rport = uint16(*lport), uint16(*rport)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := tcprtt.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "tcprtt:", err)
		os.Exit(1)
	}
}
