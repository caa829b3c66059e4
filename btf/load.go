package btf

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	cbtf "github.com/cilium/ebpf/btf"
)

// KernelPath is where a running Linux kernel exposes its BTF.
const KernelPath = "/sys/kernel/btf/vmlinux"

//go:embed default.btf
var embedded []byte

// LoadFile reads BTF from a raw BTF blob (such as /sys/kernel/btf/vmlinux or a
// snapshot written by [Snapshot]) or from an ELF file with a .BTF section.
func LoadFile(path string) (*cbtf.Spec, error) {
	spec, err := cbtf.LoadSpec(path)
	if err != nil {
		return nil, fmt.Errorf("load BTF from %s: %w", path, err)
	}
	return spec, nil
}

// LoadKernel reads the running kernel's BTF. Only call it when the caller has
// decided that the running kernel is the source it wants.
func LoadKernel() (*cbtf.Spec, error) {
	spec, err := cbtf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF: %w", err)
	}
	return spec, nil
}

var embeddedSpec = sync.OnceValues(func() (*cbtf.Spec, error) {
	spec, err := cbtf.LoadSpecFromReader(bytes.NewReader(embedded))
	if err != nil {
		return nil, fmt.Errorf("load embedded BTF snapshot: %w", err)
	}
	return spec, nil
})

// Embedded returns the snapshot built into fentrygen: the types reachable from
// the functions its examples and tests use, taken from a Linux 6.18 vmlinux.
// It is the source of last resort. The returned spec is shared: copy it
// before changing it.
func Embedded() (*cbtf.Spec, error) { return embeddedSpec() }

// EmbeddedSize is the size in bytes of the embedded snapshot.
func EmbeddedSize() int { return len(embedded) }
