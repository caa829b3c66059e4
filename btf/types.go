package btf

import (
	"iter"

	cbtf "github.com/cilium/ebpf/btf"
)

// Types is what names are looked up in: a *btf.Spec, or a view of a
// kernel's BTF that [Modules] gives (one module's types, or a module's
// types before vmlinux's).
type Types interface {
	// AnyTypesByName returns the types called name, or an error wrapping
	// btf.ErrNotFound.
	AnyTypesByName(name string) ([]cbtf.Type, error)
	// All yields every type, for near-miss suggestions.
	All() iter.Seq2[cbtf.Type, error]
}

var _ Types = (*cbtf.Spec)(nil)
