// Command klockstat times the kernel's mutexes and rw-semaphores by
// caller, like libbpf-tools' klockstat: klockstat [-PRT] [-p PID] [-t TID]
// [-c FUNC] [-L LOCK] [-n NR_LOCKS] [-s NR_STACKS] [-S SORT] [-d DURATION]
// [-i INTERVAL].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fentrygen/fentrygen/example/klockstat"
)

func main() {
	var opts klockstat.Options
	flag.IntVar(&opts.Pid, "p", 0, "filter by process `PID`")
	flag.IntVar(&opts.Tid, "t", 0, "filter by thread `TID`")
	flag.StringVar(&opts.Caller, "c", "", "filter by caller string prefix `FUNC`")
	flag.StringVar(&opts.Lock, "L", "", "filter by specific ksym lock name or 0x address `LOCK`")
	flag.IntVar(&opts.Locks, "n", 99999999, "number of locks or threads to print (`NR_LOCKS`)")
	flag.IntVar(&opts.Stacks, "s", 1, "number of stack entries to print per lock (`NR_STACKS`)")
	sortBy := flag.String("S", "", "sort by field: acq_[max|total|count], hld_[max|total|count] (`SORT`)")
	flag.IntVar(&opts.Duration, "d", 0, "`SECONDS` to trace")
	flag.IntVar(&opts.Interval, "i", 99999999, "print interval in `SECONDS`")
	flag.BoolVar(&opts.Reset, "R", false, "reset stats each interval")
	flag.BoolVar(&opts.Timestamp, "T", false, "print timestamp")
	flag.BoolVar(&opts.PerThread, "P", false, "print per-thread stats")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: klockstat [-PRT] [-p PID] [-t TID] [-c FUNC] [-L LOCK] [-n NR_LOCKS] [-s NR_STACKS] [-S SORT] [-d DURATION] [-i INTERVAL]")
		flag.PrintDefaults()
	}
	flag.Parse()
	usage := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		flag.Usage()
		os.Exit(2)
	}
	switch {
	case flag.NArg() != 0:
		usage("unexpected argument %s", flag.Arg(0))
	case opts.Pid < 0 || opts.Tid < 0 || opts.Locks <= 0 || opts.Stacks <= 0 || opts.Duration < 0 || opts.Interval <= 0:
		usage("PID, TID, NR_LOCKS, NR_STACKS, DURATION and INTERVAL must be positive")
	case opts.PerThread && opts.Stacks != 1:
		usage("--per-thread and --stacks cannot be used together")
	}
	if *sortBy != "" {
		if err := klockstat.ParseSort(*sortBy, &opts); err != nil {
			usage("%v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := klockstat.Run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "klockstat:", err)
		os.Exit(1)
	}
}
