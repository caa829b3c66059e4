// Command connwatch prints IPv4 TCP connects as the generated connwatch
// probes see them: who (pid, comm), where (address, port) and with what
// result, and shows fmod_ret refusing one port.
//
//	connwatch          trace every connect until interrupted
//	connwatch -demo    make a few connects of its own and show what was seen
//
// Where the running kernel refuses to load fentry programs, connwatch -demo
// runs itself inside Debian's 6.1 and 6.12 kernels under QEMU instead, and
// says so.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/connwatch"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "connwatch:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("connwatch", flag.ContinueOnError)
	demo := fs.Bool("demo", false, "connect to local listeners a few times and show the events (in a VM when this kernel refuses fentry)")
	n := fs.Int("n", 3, "connects the demo makes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*demo {
		return trace(w)
	}
	err := runDemo(w, *n)
	if err == nil || vmtest.InVM() || !refused(err) {
		return err
	}
	fmt.Fprintf(w, "this kernel (Linux %s) refuses fentry programs here:\n  %v\nrunning the same demo in QEMU guests instead.\n", runtime.KernelRelease(), err)
	return vmtest.RunProgram(w, "github.com/fentrygen/fentrygen/example/connwatch/cmd/connwatch", "-demo", fmt.Sprintf("-n=%d", *n))
}

// refused tells a kernel's refusal of tracing programs (by policy, EPERM,
// or for want of BPF trampolines) from a bug in them: a verifier rejection
// (EACCES, EINVAL) is reported, not hidden behind a VM.
func refused(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, syscall.Errno(524))
}

// runDemo loads the probes for this process only, connects n times to one
// listener and once to a port denyConnect refuses, and prints the events.
func runDemo(w io.Writer, n int) error {
	open, openPort, err := vmtest.Serve()
	if err != nil {
		return err
	}
	defer open.Close()
	closed, closedPort, err := vmtest.Serve()
	if err != nil {
		return err
	}
	defer closed.Close()

	connwatch.OnlyPid = uint32(os.Getpid())
	connwatch.DeniedPort = closedPort
	objs, err := connwatch.Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	events, results := objs.ConnectEventReader, objs.ConnectResultReader

	fmt.Fprintf(w, "probes attached on Linux %s: onConnect (fentry tcp_v4_connect), onConnectExit (fexit), denyConnect (fmod_ret security_socket_connect refuses port %d)\n", runtime.KernelRelease(), closedPort)
	for range n {
		fmt.Fprintf(w, "connect 127.0.0.1:%d -> %s\n", openPort, errText(vmtest.Connect(openPort)))
	}
	fmt.Fprintf(w, "connect 127.0.0.1:%d -> %s (denyConnect refused it in security_socket_connect, before tcp_v4_connect: no events for it)\n", closedPort, errText(vmtest.Connect(closedPort)))

	seen, err := drain(events, func(e connwatch.ConnectEvent) { printEvent(w, e) })
	if err != nil {
		return err
	}
	if _, err := drain(results, func(r connwatch.ConnectResult) {
		fmt.Fprintf(w, "  fexit   pid=%d tcp_v4_connect returned %d\n", r.Pid, r.Ret)
	}); err != nil {
		return err
	}
	if seen != n {
		return fmt.Errorf("saw %d connect events, made %d connects that reached tcp_v4_connect", seen, n)
	}
	return nil
}

// drain hands each queued record to f until none arrives for half a
// second, and counts them.
func drain[T any](rd *runtime.Reader[T], f func(T)) (int, error) {
	n := 0
	for {
		v, err := rd.ReadTimeout(500 * time.Millisecond)
		if errors.Is(err, runtime.ErrTimeout) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		f(v)
		n++
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func printEvent(w io.Writer, e connwatch.ConnectEvent) {
	ip := net.IPv4(byte(e.Daddr), byte(e.Daddr>>8), byte(e.Daddr>>16), byte(e.Daddr>>24))
	port := e.Dport<<8 | e.Dport>>8
	family := fmt.Sprint(e.Family)
	if e.Family == unix.AF_INET {
		family = "AF_INET"
	}
	fmt.Fprintf(w, "  fentry  pid=%d comm=%s family=%s dst=%s:%d t=%dns\n", e.Pid, bytes.TrimRight(e.Comm[:], "\x00"), family, ip, port, e.Ts)
}

// trace prints every connect until SIGINT or SIGTERM.
func trace(w io.Writer) error {
	objs, err := connwatch.Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	events := objs.ConnectEventReader
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() { <-stop; events.Close() }()
	fmt.Fprintf(w, "tracing IPv4 TCP connects on Linux %s; Ctrl-C stops\n", runtime.KernelRelease())
	for {
		e, err := events.Read()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		printEvent(w, e)
	}
}
