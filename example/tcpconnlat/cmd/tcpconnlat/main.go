// Command tcpconnlat traces active TCP connects and their latency, like
// libbpf-tools' tcpconnlat: tcpconnlat [-t] [-p PID] [-L] [min_ms].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/fentrygen/fentrygen/example/tcpconnlat"
)

func main() {
	var opts tcpconnlat.Options
	pid := flag.Uint("p", 0, "trace this PID only")
	flag.BoolVar(&opts.Timestamp, "t", false, "include timestamp on output")
	flag.BoolVar(&opts.Lport, "L", false, "include LPORT on output")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tcpconnlat [-t] [-p PID] [-L] [min_ms]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	opts.Pid = uint32(*pid)
	if flag.NArg() > 1 {
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() == 1 {
		ms, err := strconv.ParseFloat(flag.Arg(0), 64)
		if opts.MinUs = uint64(ms * 1000); err != nil || ms <= 0 || opts.MinUs == 0 {
			fmt.Fprintf(os.Stderr, "Invalid delay (in us): %s\n", flag.Arg(0))
			flag.Usage()
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := tcpconnlat.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "tcpconnlat:", err)
		os.Exit(1)
	}
}
