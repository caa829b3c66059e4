package vmtest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmboot"
)

// KernelBTFs returns the BTF of every test kernel by series ("6.1",
// "6.12", "7.x"), skipping the test loudly (failing it with FENTRYGEN_VM=require)
// when the kernels cannot be had.
func KernelBTFs(t testing.TB) map[string]*btf.Spec {
	t.Helper()
	out := map[string]*btf.Spec{}
	for name, k := range KernelModules(t) {
		out[name] = k.Base()
	}
	return out
}

// KernelModules returns the BTF of every test kernel with its modules' (read
// from the kernel's packages when asked for), by series, skipping as
// [KernelBTFs] does.
func KernelModules(t testing.TB) map[string]*fbtf.Modules {
	t.Helper()
	out := map[string]*fbtf.Modules{}
	for _, k := range Kernels(t) {
		spec, err := KernelBTF(k)
		if err != nil {
			t.Fatal(err)
		}
		out[k.Name] = fbtf.NewModules(spec, k.ModuleBTF())
	}
	return out
}

var kernelBTFs sync.Map // Kernel.Package -> func() (*btf.Spec, error)

// KernelBTF is k.BTF(), decoded once per process (a kernel's takes
// seconds): share it, do not change it.
func KernelBTF(k vmboot.Kernel) (*btf.Spec, error) {
	f, _ := kernelBTFs.LoadOrStore(k.Package, sync.OnceValues(k.BTF))
	return f.(func() (*btf.Spec, error))()
}

// Kernels returns the test kernels (downloading any missing), skipping as
// [KernelBTFs] does.
func Kernels(t testing.TB) []vmboot.Kernel {
	t.Helper()
	kernels, err := vmboot.Kernels()
	if err != nil {
		msg := fmt.Sprintf("KERNEL BTF NOT AVAILABLE: %v", err)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg + "; set FENTRYGEN_VM=require to make this a failure")
	}
	return kernels
}
