// Command sessionlat times a kernel function's calls and prints their
// latency as a log2 histogram, like libbpf-tools' funclatency, with one
// fsession probe: sessionlat [-m|-u] [-p PID] [-i INTERVAL] [-d DURATION]
// [-T] [-pair] FUNCTION. -pair loads it as an fentry+fexit pair even where
// the kernel has fsession; stderr says which the kernel got.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/sessionlat"
	"github.com/fentrygen/fentrygen/runtime"
)

func main() {
	var opts sessionlat.Options
	ms := flag.Bool("m", false, "output in milliseconds")
	us := flag.Bool("u", false, "output in microseconds")
	flag.IntVar(&opts.Pid, "p", 0, "process `PID` to trace")
	flag.IntVar(&opts.Interval, "i", 0, "summary `INTERVAL` in seconds")
	flag.IntVar(&opts.Duration, "d", 0, "`DURATION` to trace, in seconds")
	flag.BoolVar(&opts.Timestamp, "T", false, "print timestamp")
	flag.BoolVar(&opts.Pair, "pair", false, "load an fentry+fexit pair even where the kernel has fsession")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sessionlat [-m|-u] [-p PID] [-i INTERVAL] [-d DURATION] [-T] [-pair] FUNCTION")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *ms && *us || opts.Pid < 0 || opts.Interval < 0 || opts.Duration < 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts.Func = flag.Arg(0)
	if *us {
		opts.Units = sessionlat.Usec
	} else if *ms {
		opts.Units = sessionlat.Msec
	}
	opts.Attached = func(m runtime.Mechanism) { fmt.Fprintf(os.Stderr, "sessionlat: %s as %s\n", opts.Func, m) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := sessionlat.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "sessionlat:", err)
		os.Exit(1)
	}
}
