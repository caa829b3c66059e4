package runtime

import (
	"errors"
	"fmt"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// runningModules reads the BTF of the running kernel's modules through
// kernelBTF, which cilium/ebpf shares when it finds a program's target
// in a module (so each module's BTF is decoded once per process).
type runningModules struct{}

func (runningModules) ModuleNames() ([]string, error) { return kernelBTF.Modules() }

func (runningModules) LoadModule(name string, base *cbtf.Spec) (*cbtf.Spec, error) {
	if kernel, err := kernelBTF.Kernel(); err != nil || kernel != base {
		return nil, errors.New("the running kernel's modules build on its own BTF only")
	}
	return kernelBTF.Module(name)
}

// modules is the target's modules: its own, or those a snapshot Spec
// keeps.
func (t Target) modules() *fbtf.Modules {
	if t.Modules != nil {
		return t.Modules
	}
	return fbtf.NewModules(t.Spec, nil)
}

// locate finds what info attaches to on the target: the function (or
// tracepoint) and where the program's types are looked up, its module's
// BTF first for a module's function.
func (t Target) locate(info Info) (*fbtf.Func, fbtf.Types, error) {
	mods := t.modules()
	if info.Kind.Tracepoint() {
		f, err := fbtf.ResolveTracepoint(t.Spec, info.Target)
		if err != nil {
			return nil, nil, fmt.Errorf("on %s: %w", t.Name, err)
		}
		return f, mods.Vmlinux(), nil
	}
	v := mods.Validate(info.Module, info.Target, nil)
	if v.Func == nil {
		if errors.Is(v.Err, fbtf.ErrNoModule) {
			return nil, nil, fmt.Errorf("on %s: %w: load the module first (modprobe %s), or build it in", t.Name, v.Err, info.Module)
		}
		return nil, nil, fmt.Errorf("on %s: %w", t.Name, v.Err)
	}
	return v.Func, v.Scope, nil
}
