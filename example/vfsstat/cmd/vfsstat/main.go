// Command vfsstat counts VFS calls system-wide, like libbpf-tools'
// vfsstat: vfsstat [interval [count]].
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/fentrygen/fentrygen/example/vfsstat"
)

func main() {
	var opts vfsstat.Options
	for i, dst := range []*int{&opts.Interval, &opts.Count} {
		if len(os.Args) > i+1 {
			n, err := strconv.Atoi(os.Args[i+1])
			if err != nil || n < 0 || i == 0 && n == 0 {
				fmt.Fprintf(os.Stderr, "usage: vfsstat [interval [count]]\n")
				os.Exit(2)
			}
			*dst = n
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := vfsstat.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "vfsstat:", err)
		os.Exit(1)
	}
}
