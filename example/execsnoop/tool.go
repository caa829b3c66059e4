package execsnoop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fentrygen/fentrygen/runtime"
)

// Options are execsnoop's command line.
type Options struct {
	// Parent, when not zero, keeps the execs of this process's children.
	Parent uint32
	// Attached, if set, is called once the probe is attached.
	Attached func()
}

// Run loads the probe and prints one line per exec until ctx is done.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	OnlyParent = opts.Parent
	objs, err := Load(runtime.Options{})
	if err != nil {
		return err
	}
	defer objs.Close()
	if opts.Attached != nil {
		opts.Attached()
	}
	fmt.Fprintf(w, "%-7s %-7s %-16s %s\n", "PID", "PPID", "COMM", "FILENAME")
	for e, err := range objs.ExecReader.Records(ctx) {
		if err != nil {
			return err
		}
		Print(w, e)
	}
	return nil
}

// Print writes one exec as Run does.
func Print(w io.Writer, e Exec) {
	fmt.Fprintf(w, "%-7d %-7d %-16s %s\n", e.Pid, e.Ppid, cstring(e.Comm[:]), cstring(e.Filename[:]))
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Refused reports whether err is the kernel refusing to load tracing
// programs at all (by policy), rather than a problem with this one.
func Refused(err error) bool { return errors.Is(err, os.ErrPermission) }
