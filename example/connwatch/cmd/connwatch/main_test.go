package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestRefused: the demo moves to QEMU only when the kernel refuses tracing
// programs, not when the verifier rejects a buggy one.
func TestRefused(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("load: %w", unix.EPERM):                  true,
		fmt.Errorf("attach: %w", syscall.Errno(524)):        true,
		fmt.Errorf("attach: %w", unix.ENOTSUP):              true,
		fmt.Errorf("verifier rejected it: %w", unix.EACCES): false,
		fmt.Errorf("verifier rejected it: %w", unix.EINVAL): false,
		fmt.Errorf("no such function: %w", unix.ENOENT):     false,
	} {
		assert.Equal(t, want, refused(err), "%v", err)
	}
}
