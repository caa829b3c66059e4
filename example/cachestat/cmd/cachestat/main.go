// Command cachestat counts page cache hits and misses system-wide, like
// libbpf-tools' cachestat: cachestat [-T] [interval [count]].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/fentrygen/fentrygen/example/cachestat"
)

func main() {
	var opts cachestat.Options
	flag.BoolVar(&opts.Timestamp, "T", false, "print timestamp")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: cachestat [-T] [interval [count]]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	for i, dst := range []*int{&opts.Interval, &opts.Count} {
		if i < flag.NArg() {
			n, err := strconv.Atoi(flag.Arg(i))
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "invalid %s: %s\n", []string{"interval", "count"}[i], flag.Arg(i))
				flag.Usage()
				os.Exit(2)
			}
			*dst = n
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cachestat.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "cachestat:", err)
		os.Exit(1)
	}
}
