// Command vfscount counts VFS calls by function with one probe on all of
// them: vfscount [-p PID] [-per-function] [interval [count]].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/fentrygen/fentrygen/example/vfscount"
)

func main() {
	var opts vfscount.Options
	pid := flag.Uint("p", 0, "count only process `pid`")
	flag.BoolVar(&opts.PerFunction, "per-function", false, "one link per function even where the kernel has tracing multi-links")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: vfscount [-p pid] [-per-function] [interval [count]]")
		flag.PrintDefaults()
	}
	flag.Parse()
	opts.Pid = uint32(*pid)
	for i, dst := range []*int{&opts.Interval, &opts.Count} {
		if flag.NArg() > i {
			n, err := strconv.Atoi(flag.Arg(i))
			if err != nil || n < 0 || i == 0 && n == 0 {
				flag.Usage()
				os.Exit(2)
			}
			*dst = n
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := vfscount.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "vfscount:", err)
		os.Exit(1)
	}
}
