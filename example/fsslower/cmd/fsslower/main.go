// Command fsslower traces ext4 operations slower than a threshold, like
// libbpf-tools' fsslower: fsslower [-t ext4] [-p PID] [-m MIN] [-d DURATION] [-c].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/fsslower"
)

func main() {
	var opts fsslower.Options
	fs := flag.String("t", "ext4", "which filesystem to trace (only `ext4`)")
	flag.IntVar(&opts.Pid, "p", 0, "process `PID` to trace")
	flag.Uint64Var(&opts.MinMs, "m", 10, "`MIN` latency to trace, in ms")
	flag.IntVar(&opts.Duration, "d", 0, "total `DURATION` of trace in seconds")
	flag.BoolVar(&opts.CSV, "c", false, "output as csv")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: fsslower [-t ext4] [-p PID] [-m MIN] [-d DURATION] [-c]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *fs != "ext4" || opts.Pid < 0 || opts.Duration < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := fsslower.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "fsslower:", err)
		os.Exit(1)
	}
}
