// Command fsdist shows ext4 operation latency as histograms, like
// libbpf-tools' fsdist: fsdist [-t ext4] [-T] [-m] [-p PID] [interval [count]].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/fentrygen/fentrygen/example/fsdist"
)

func main() {
	var opts fsdist.Options
	fs := flag.String("t", "ext4", "which filesystem to trace (only `ext4`)")
	flag.BoolVar(&opts.Timestamp, "T", false, "print timestamp")
	flag.BoolVar(&opts.Milliseconds, "m", false, "millisecond histogram")
	flag.IntVar(&opts.Pid, "p", 0, "process `PID` to trace")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: fsdist [-t ext4] [-T] [-m] [-p PID] [interval [count]]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *fs != "ext4" || opts.Pid < 0 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	for i, dst := range []*int{&opts.Interval, &opts.Count} {
		if i < flag.NArg() {
			n, err := strconv.Atoi(flag.Arg(i))
			if err != nil || n <= 0 {
				flag.Usage()
				os.Exit(2)
			}
			*dst = n
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := fsdist.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "fsdist:", err)
		os.Exit(1)
	}
}
