// Command tcpsynbl summarizes the SYN backlog of TCP listeners as
// histograms, like libbpf-tools' tcpsynbl:
// tcpsynbl [-T] [-4] [-6] [interval [count]].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/fentrygen/fentrygen/example/tcpsynbl"
)

func main() {
	var opts tcpsynbl.Options
	flag.BoolVar(&opts.Timestamp, "T", false, "include timestamp on output")
	flag.BoolVar(&opts.IPv4, "4", false, "trace IPv4 family only")
	flag.BoolVar(&opts.IPv6, "6", false, "trace IPv6 family only")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tcpsynbl [-T] [-4] [-6] [interval [count]]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	for i, dst := range []*int{&opts.Interval, &opts.Count} {
		if flag.NArg() > i {
			n, err := strconv.Atoi(flag.Arg(i))
			if err != nil || n <= 0 {
				flag.Usage()
				os.Exit(2)
			}
			*dst = n
		}
	}
	if flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := tcpsynbl.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "tcpsynbl:", err)
		os.Exit(1)
	}
}
