package loopwatch_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/loopwatch"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// offsetOf is the offset of the load a member path was relocated to.
func offsetOf(t *testing.T, insns asm.Instructions, path string) int16 {
	t.Helper()
	for _, line := range runtime.Resolved(insns) {
		i, what, _ := strings.Cut(line, ": ")
		if what == path {
			n, err := strconv.Atoi(i)
			require.NoError(t, err)
			return insns[n].Offset
		}
	}
	t.Fatalf("%s not among %v", path, runtime.Resolved(insns))
	return 0
}

// TestRelocateTestKernels relocates the probes against each test
// kernel's BTF with its loop module's (from the kernel's packages), without
// booting: lo_state, a member of loop's own struct loop_device, moved in
// 7.x, and vmlinux's file.f_flags moves in every kernel. Without the
// module's BTF the probes do not build, and say to load it.
func TestRelocateTestKernels(t *testing.T) {
	want := map[string]struct{ loState, fFlags int16 }{
		"6.1":  {120, 64},
		"6.12": {120, 48},
		"7.x":  {128, 40},
	}
	for name, mods := range vmtest.KernelModules(t) {
		t.Run(name, func(t *testing.T) {
			target := runtime.Target{Spec: mods.Base(), Name: "Linux " + name, Modules: mods}
			status, err := loopwatch.OnStatusSpec(target)
			require.NoError(t, err)
			assert.Equal(t, "loop_get_status", status.AttachTo, "cilium/ebpf finds the module by the function's name")
			assert.Equal(t, "fexit/loop:loop_get_status", status.SectionName)
			assert.Equal(t, want[name].loState, offsetOf(t, status.Instructions, "loop_device.lo_state"))
			control, err := loopwatch.OnControlSpec(target)
			require.NoError(t, err)
			assert.Equal(t, want[name].fFlags, offsetOf(t, control.Instructions, "file.f_flags"))

			_, err = loopwatch.OnStatusSpec(runtime.Target{Spec: mods.Base(), Name: "Linux " + name})
			assert.ErrorContains(t, err, "module loop: no BTF for this module")
			assert.ErrorContains(t, err, "modprobe loop")
		})
	}
}
