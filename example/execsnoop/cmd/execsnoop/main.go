// Command execsnoop prints every exec(2) as the tp_btf probe of package
// execsnoop sees it: pid, parent pid, comm and file name.
//
//	execsnoop          trace until interrupted
//	execsnoop -demo    run a few programs and show what was seen
//
// Where the running kernel refuses tracing programs, execsnoop -demo runs
// itself inside Debian's test kernels under QEMU instead, and says so.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"github.com/fentrygen/fentrygen/example/execsnoop"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "execsnoop:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("execsnoop", flag.ContinueOnError)
	demo := fs.Bool("demo", false, "run a few programs of its own and show the events (in a VM when this kernel refuses tracing programs)")
	child := fs.Bool("child", false, "exit at once (what -demo runs)")
	n := fs.Int("n", 3, "programs the demo runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *child:
		return nil
	case !*demo:
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return execsnoop.Run(ctx, w, execsnoop.Options{})
	}
	err := runDemo(w, *n)
	if err == nil || vmtest.InVM() || !execsnoop.Refused(err) {
		return err
	}
	fmt.Fprintf(w, "this kernel (Linux %s) refuses tracing programs here:\n  %v\nrunning the same demo in QEMU guests instead.\n", runtime.KernelRelease(), err)
	return vmtest.RunProgram(w, "github.com/fentrygen/fentrygen/example/execsnoop/cmd/execsnoop", "-demo", fmt.Sprintf("-n=%d", *n))
}

// runDemo traces the execs of this process's children while it runs
// itself n times.
func runDemo(w io.Writer, n int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	execsnoop.OnlyParent = uint32(os.Getpid())
	objs, err := execsnoop.Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	fmt.Fprintf(w, "tp_btf probe attached to sched_process_exec on Linux %s, for the children of pid %d\n", runtime.KernelRelease(), os.Getpid())
	for range n {
		cmd := exec.Command(self, "-child")
		if err := cmd.Run(); err != nil {
			return err
		}
		fmt.Fprintf(w, "ran %s -child: pid %d\n", self, cmd.Process.Pid)
	}
	var out bytes.Buffer
	seen := 0
	for {
		e, err := objs.ExecReader.ReadTimeout(500 * time.Millisecond)
		if err != nil {
			break
		}
		execsnoop.Print(&out, e)
		seen++
	}
	fmt.Fprintf(w, "%-7s %-7s %-16s %s\n%s", "PID", "PPID", "COMM", "FILENAME", out.String())
	if seen != n {
		return fmt.Errorf("saw %d execs, made %d", seen, n)
	}
	return nil
}
