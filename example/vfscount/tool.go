package vfscount

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are vfscount's command line: vfscount [-p PID] [-per-function]
// [interval [count]].
type Options struct {
	// Pid, if not 0, is the only process counted.
	Pid uint32
	// PerFunction attaches one link per function even where the kernel
	// has tracing multi-links.
	PerFunction bool
	// Interval between tables, in seconds (default 1).
	Interval int
	// Count of tables; 0 prints until ctx is done.
	Count int
	// Attached, if set, is called once the probe is attached.
	Attached func(*Objects)
}

// LoadFor loads the probe counting the calls of process pid and thread
// tid (every one of them when 0).
func LoadFor(pidFilter, tidFilter uint32, opts runtime.Options) (*Objects, error) {
	pid, tid = pidFilter, tidFilter
	defer func() { pid, tid = 0, 0 }()
	return Load(opts)
}

// Count is the calls of one function since the probe was attached.
type Count struct {
	Func  string
	Calls uint64
}

// Counts are the calls counted so far, by function, in the order the
// probe was attached to them, each named from its index and checked
// against the address the probe saw (FuncIP).
func Counts(objs *Objects) ([]Count, error) {
	// Every count first: naming the addresses reads /proc/kallsyms.
	var out []Count
	ips := map[int]uint64{}
	for i, fn := range objs.TargetsOf("onVfs") {
		n, ok, err := objs.Calls.Lookup(uint32(i))
		if err != nil {
			return nil, err
		}
		if ok {
			if ips[i], _, err = objs.Ips.Lookup(uint32(i)); err != nil {
				return nil, err
			}
		}
		out = append(out, Count{fn, n})
	}
	for i, ip := range ips {
		if at, err := objs.TargetOf("onVfs", ip); err == nil && at != "" && at != out[i].Func {
			return nil, fmt.Errorf("function %d is %s, but the probe ran at %#x, in %s", i, out[i].Func, ip, at)
		}
	}
	return out, nil
}

// Run loads the probe and prints, every interval, the calls per second of
// each function since the previous table.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	if opts.Interval <= 0 {
		opts.Interval = 1
	}
	objs, err := LoadFor(opts.Pid, 0, runtime.Options{PerFunction: opts.PerFunction})
	if err != nil {
		return err
	}
	defer objs.Close()
	fmt.Fprintf(w, "attached to %d functions: %s in %v\n", len(objs.TargetsOf("onVfs")), objs.Mechanism("onVfs"), objs.Attached.Round(time.Microsecond))
	for _, n := range objs.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if opts.Attached != nil {
		opts.Attached(objs)
	}
	prev := map[string]uint64{}
	tick := time.NewTicker(time.Duration(opts.Interval) * time.Second)
	defer tick.Stop()
	for n := 0; opts.Count == 0 || n < opts.Count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		counts, err := Counts(objs)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", time.Now().Format("15:04:05"))
		for _, c := range counts {
			fmt.Fprintf(w, "  %-16s %8d/s\n", c.Func, (c.Calls-prev[c.Func])/uint64(opts.Interval))
			prev[c.Func] = c.Calls
		}
	}
	return nil
}
