package runtime

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestRefusalMessage: a kernel that refuses tracing programs by policy
// (EPERM) is said to, without cilium/ebpf's guess about RLIMIT_MEMLOCK, and
// the error still matches unix.EPERM.
func TestRefusalMessage(t *testing.T) {
	cilium := fmt.Errorf("program onConnect: load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM)
	infos := map[string]Info{"onConnect": {Name: "onConnect", Kind: Fentry, Target: "tcp_v4_connect"}}
	err := collectionError(infos, Target{Name: "Linux 6.18"}, cilium, 20)
	assert.True(t, errors.Is(err, unix.EPERM))
	assert.Equal(t, "load program onConnect (fentry/tcp_v4_connect) on Linux 6.18: the kernel refused it: operation not permitted (tracing programs need root, or CAP_BPF with CAP_PERFMON, and some hosts forbid them by policy)", err.Error())
	assert.NotContains(t, err.Error(), "MEMLOCK")
}
