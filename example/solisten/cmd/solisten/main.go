// Command solisten traces listen(2) on IPv4 and IPv6 sockets, like
// libbpf-tools' solisten: solisten [-t] [-p PID].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/solisten"
)

func main() {
	var opts solisten.Options
	pid := flag.Uint("p", 0, "process ID to trace")
	flag.BoolVar(&opts.Timestamp, "t", false, "include timestamp on output")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts.Pid = uint32(*pid)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := solisten.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "solisten:", err)
		os.Exit(1)
	}
}
