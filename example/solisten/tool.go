package solisten

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/inet"
	"github.com/fentrygen/fentrygen/runtime"
)

// Options are solisten's command line: solisten [-t] [-p PID].
type Options struct {
	// Pid traces this process only (-p); 0 traces all.
	Pid uint32
	// Timestamp prints the time each event is handled (-t).
	Timestamp bool
	// Attached, if set, is called once the probes are attached.
	Attached func()
}

// Run loads the probes and prints a line per listen(2) on an IPv4 or IPv6
// socket until ctx is done, as libbpf-tools' solisten does.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	OnlyPid = opts.Pid
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	if opts.Timestamp {
		fmt.Fprintf(w, "%-8s ", "TIME(s)")
	}
	fmt.Fprintf(w, "%-7s %-16s %-3s %-7s %-5s %-5s %-32s\n", "PID", "COMM", "RET", "BACKLOG", "PROTO", "PORT", "ADDR")
	for e, err := range objs.EventReader.Records(ctx) {
		if err != nil {
			return err
		}
		if opts.Timestamp {
			fmt.Fprintf(w, "%8s ", time.Now().Format("15:04:05"))
		}
		fmt.Fprintf(w, "%-7d %-16s %-3d %-7d %-5s %-5d %-32s\n", e.Pid, cstring(e.Task[:]), e.Ret, e.Backlog, proto(e), inet.Ntohs(e.Sport), addr(e))
	}
	return nil
}

// proto is TCPv4, UDPv6...: the socket type, then v4 for AF_INET and v6
// for anything else.
func proto(e Event) string {
	p := "UNK"
	switch e.Type {
	case unix.SOCK_STREAM:
		p = "TCP"
	case unix.SOCK_DGRAM:
		p = "UDP"
	}
	if e.Family == unix.AF_INET {
		return p + "v4"
	}
	return p + "v6"
}

func addr(e Event) string {
	if e.Family == unix.AF_INET {
		return inet.Ntoa(e.Addr4)
	}
	return inet.Ntop(int(e.Family), e.Addr6[:])
}

// cstring is the NUL-terminated string at the start of b.
func cstring(b []byte) []byte {
	s, _, _ := bytes.Cut(b, []byte{0})
	return s
}
