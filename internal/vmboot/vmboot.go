// Package vmboot boots Debian kernels under QEMU with a program of the
// host's as the guest's program: the kernels (a table of series, resolved
// with apt and cached), the initramfs (/init is internal/vminit), one boot
// with its console output and exit status, and RunExec, which runs a
// static program in each kernel (what `fentrygen vm` and go test -exec do).
// It runs on the host only; package vmtest builds Go tests on it, and the
// fentrygen command uses it without linking the net package, so that it
// stays static and can be the guest's /init itself.
package vmboot

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const (
	// EnvInVM is set (to the guest's kernel release) inside the guest.
	EnvInVM = "FENTRYGEN_IN_VM"
	// EnvMode is "require" to fail, rather than skip, when no VM can run.
	EnvMode = "FENTRYGEN_VM"

	// The lines vminit prints before and after the program.
	markerKernel = "FENTRYGEN-VM-KERNEL"
	markerExit   = "FENTRYGEN-VM-EXIT"
)

// MissingError says something a VM needs is not on this machine: a test
// skips, or fails with FENTRYGEN_VM=require.
type MissingError struct{ Err error }

func (e MissingError) Error() string { return e.Err.Error() }
func (e MissingError) Unwrap() error { return e.Err }

// Timeout bounds one boot: $FENTRYGEN_VM_TIMEOUT (a Go duration) or 5m.
func Timeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FENTRYGEN_VM_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

// Log appends line to the file named by $FENTRYGEN_VM_LOG (if set), after
// the name of the package being tested, so that CI can show where every VM
// test ran without -v.
func Log(line string) {
	path := os.Getenv("FENTRYGEN_VM_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%-18s %s\n", packageName(), line)
}

// packageName is the test's package as a path in its module
// ("example/connwatch"), found from go.mod above the folder go test runs
// it in.
var packageName = sync.OnceValue(func() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil && rel != "." {
				return filepath.ToSlash(rel)
			}
			break
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return filepath.Base(wd)
})
