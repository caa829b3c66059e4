// Command funclatency times a kernel function's calls and prints their
// latency as a log2 histogram, like libbpf-tools' funclatency:
// funclatency [-m|-u] [-p PID] [-i INTERVAL] [-d DURATION] [-T] FUNCTION.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/funclatency"
)

func main() {
	var opts funclatency.Options
	ms := flag.Bool("m", false, "output in milliseconds")
	us := flag.Bool("u", false, "output in microseconds")
	flag.IntVar(&opts.Pid, "p", 0, "process `PID` to trace")
	flag.IntVar(&opts.Interval, "i", 0, "summary `INTERVAL` in seconds")
	flag.IntVar(&opts.Duration, "d", 0, "`DURATION` to trace, in seconds")
	flag.BoolVar(&opts.Timestamp, "T", false, "print timestamp")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: funclatency [-m|-u] [-p PID] [-i INTERVAL] [-d DURATION] [-T] FUNCTION")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *ms && *us || opts.Pid < 0 || opts.Interval < 0 || opts.Duration < 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts.Func = flag.Arg(0)
	if *us {
		opts.Units = funclatency.Usec
	} else if *ms {
		opts.Units = funclatency.Msec
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := funclatency.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "funclatency:", err)
		os.Exit(1)
	}
}
