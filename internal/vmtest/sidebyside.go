package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Running is a libbpf-tools program started by [StartTool], its output
// collected.
type Running struct {
	cmd *exec.Cmd
	out lockedBuffer
}

// lockedBuffer is the tool's output, written by exec's copying goroutine
// and read by the test while the tool runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartTool starts the libbpf-tools program name (packed by [Tools]) with
// args and waits until it holds links BPF links, so that what happens next
// is seen by it. The tool is killed when the test ends if still running.
func StartTool(t *testing.T, name string, links int, args ...string) *Running {
	t.Helper()
	r := &Running{cmd: Tool(name, args...)}
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := bpfLinks(r.cmd.Process.Pid)
		if n >= links {
			return r
		}
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			r.cmd.Wait()
			t.Fatalf("%s holds %d BPF links after 2 minutes, want %d; it said:\n%s", name, n, links, r.out.String())
		}
		if exited(r.cmd) {
			t.Fatalf("%s exited before attaching: %v\n%s", name, r.cmd.Wait(), r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Wait waits for the tool to exit and returns what it printed.
func (r *Running) Wait(t *testing.T) string {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", r.cmd.Args[3], err, r.out.String())
	}
	return r.out.String()
}

// Interrupt sends SIGINT (the tools print their totals on it) and waits.
func (r *Running) Interrupt(t *testing.T) string {
	t.Helper()
	r.cmd.Process.Signal(os.Interrupt)
	return r.Wait(t)
}

// InterruptAfterLines waits until the tool has printed at least lines
// lines (its header included), at most a minute, then interrupts it: the
// originals stop polling their perf buffers on SIGINT, and a loaded TCG
// guest may not have run their poll yet. Short output is left to the
// test's assertions.
func (r *Running) InterruptAfterLines(t *testing.T, lines int) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for strings.Count(r.out.String(), "\n") < lines && time.Now().Before(deadline) && !exited(r.cmd) {
		time.Sleep(20 * time.Millisecond)
	}
	// What one poll printed may have a neighbour in the next.
	time.Sleep(200 * time.Millisecond)
	return r.Interrupt(t)
}

// bpfLinks counts the BPF link file descriptors process pid holds.
func bpfLinks(pid int) int {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == "anon_inode:bpf_link" {
			n++
		}
	}
	return n
}

// exited reports whether cmd's process is gone (a zombie counts).
func exited(cmd *exec.Cmd) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return true
	}
	fields := bytes.Fields(data[bytes.LastIndexByte(data, ')')+1:])
	return len(fields) > 0 && string(fields[0]) == "Z"
}
