package vmtest

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/fentrygen/fentrygen/internal/vmboot"
)

// KernelBTFs returns the BTF of every test kernel by series ("6.1",
// "6.12", "7.x"), skipping the test loudly (failing it with FENTRYGEN_VM=require)
// when the kernels cannot be had.
func KernelBTFs(t testing.TB) map[string]*btf.Spec {
	t.Helper()
	kernels, err := vmboot.Kernels()
	if err != nil {
		msg := fmt.Sprintf("KERNEL BTF NOT AVAILABLE: %v", err)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg + "; set FENTRYGEN_VM=require to make this a failure")
	}
	out := map[string]*btf.Spec{}
	for _, k := range kernels {
		spec, err := k.BTF()
		if err != nil {
			t.Fatal(err)
		}
		out[k.Name] = spec
	}
	return out
}
