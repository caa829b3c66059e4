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
	"unsafe"

	"golang.org/x/sys/unix"
)

// Running is a libbpf-tools program started by [StartTool], its output
// collected.
type Running struct {
	cmd *exec.Cmd
	out lockedBuffer
	// done is closed once the process is reaped, with err its end.
	done chan struct{}
	err  error
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
// args and waits until it holds links BPF links (its file descriptors, in
// /proc), so that what happens next is seen by it. The tool is killed when
// the test ends if still running.
func StartTool(t *testing.T, name string, links int, args ...string) *Running {
	t.Helper()
	r := startTool(t, name, args)
	r.await(t, links, func() int { return bpfLinks(r.cmd.Process.Pid) })
	return r
}

// StartLockTool is StartTool for a tool that hooks lock functions
// (klockstat): it counts the links the kernel made since the start (BPF
// link ids, bpf(2) only), so nothing else may attach meanwhile. Reading
// /proc while such a tool attaches runs the functions being patched, and
// TCG guests have oopsed on one's int3 mid-patch (7.x) and locked up in
// readlink (6.1).
func StartLockTool(t *testing.T, name string, links int, args ...string) *Running {
	t.Helper()
	before := lastLinkID()
	r := startTool(t, name, args)
	r.await(t, links, func() int { return linksSince(before) })
	return r
}

func startTool(t *testing.T, name string, args []string) *Running {
	t.Helper()
	r := &Running{cmd: Tool(name, args...), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		if !r.exited() {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// await waits, at most 2 minutes, until count says the tool holds links
// BPF links.
func (r *Running) await(t *testing.T, links int, count func() int) {
	t.Helper()
	name := r.cmd.Args[3]
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := count()
		if n >= links {
			return
		}
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			<-r.done
			t.Fatalf("%s holds %d BPF links after 2 minutes, want %d; it said:\n%s", name, n, links, r.out.String())
		}
		if r.exited() {
			t.Fatalf("%s exited before attaching: %v\n%s", name, r.err, r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exited reports whether the process has ended and been reaped.
func (r *Running) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Wait waits for the tool to exit and returns what it printed.
func (r *Running) Wait(t *testing.T) string {
	t.Helper()
	<-r.done
	if r.err != nil {
		t.Fatalf("%s: %v\n%s", r.cmd.Args[3], r.err, r.out.String())
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
	for strings.Count(r.out.String(), "\n") < lines && time.Now().Before(deadline) && !r.exited() {
		time.Sleep(20 * time.Millisecond)
	}
	// What one poll printed may have a neighbour in the next.
	time.Sleep(200 * time.Millisecond)
	return r.Interrupt(t)
}

// linkGetNextID is bpf(2)'s BPF_LINK_GET_NEXT_ID command.
const linkGetNextID = 31

// nextLinkID is the id of the first BPF link after id, or 0 at the end.
func nextLinkID(id uint32) uint32 {
	attr := struct{ start, next, flags uint32 }{start: id}
	_, _, errno := unix.Syscall(unix.SYS_BPF, linkGetNextID, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return 0
	}
	return attr.next
}

// lastLinkID is the highest id of the kernel's BPF links (0 for none).
func lastLinkID() uint32 {
	var last uint32
	for id := nextLinkID(0); id != 0; id = nextLinkID(id) {
		last = id
	}
	return last
}

// linksSince counts the BPF links with ids above id: those made since.
func linksSince(id uint32) int {
	n := 0
	for id = nextLinkID(id); id != 0; id = nextLinkID(id) {
		n++
	}
	return n
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
