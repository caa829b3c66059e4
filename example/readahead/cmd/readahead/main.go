// Command readahead shows how the page cache's read-ahead is used, like
// libbpf-tools' readahead: readahead [-d DURATION].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/readahead"
)

func main() {
	var opts readahead.Options
	flag.IntVar(&opts.Duration, "d", 0, "`DURATION` to trace, in seconds (default: until Ctrl-C)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: readahead [-d DURATION]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 || opts.Duration < 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := readahead.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "readahead:", err)
		os.Exit(1)
	}
}
