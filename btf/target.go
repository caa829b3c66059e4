package btf

import (
	"errors"
	"fmt"
	"strings"
)

// SplitTarget splits a probe target written MODULE:FUNC; module is "" for
// a plain FUNC.
func SplitTarget(target string) (module, fn string) {
	if m, f, ok := strings.Cut(target, ":"); ok {
		return m, f
	}
	return "", target
}

// JoinTarget is the inverse of [SplitTarget].
func JoinTarget(module, fn string) string {
	if module == "" {
		return fn
	}
	return module + ":" + fn
}

// Validate is [Validate] for a probe on function fn of kernel module mod,
// or, for mod "", of vmlinux, else of the one module whose BTF defines it
// (every module's BTF at hand is read to find it). The verdict names the
// module and the scope the probe's types are looked up in.
//
// A module whose BTF is not at hand fails with ErrNoModule, unless
// vmlinux has fn: the module is then taken to be built in, and a note
// says so. A function that vmlinux has as well as mod is ambiguous: the
// kernel's loader (cilium/ebpf's) looks in vmlinux first.
func (m *Modules) Validate(mod, fn string, inject ErrorInjection) *Verdict {
	f, module, note, err := m.locate(mod, fn)
	if err != nil {
		return failed(err)
	}
	v := judge(f, inject)
	v.Module = module
	if v.Scope, err = m.Scope(module); err != nil {
		return failed(err)
	}
	if note != "" {
		v.Notes = append([]string{note}, v.Notes...)
	}
	return v
}

func (m *Modules) locate(mod, fn string) (*Func, string, string, error) {
	vmlinux := m.Vmlinux()
	if mod == "" {
		f, err := ResolveFunc(vmlinux, fn)
		if !errors.Is(err, ErrNotFound) {
			return f, "", "", err
		}
		in, _ := m.FuncModules(fn)
		switch {
		case len(in) == 1:
			types, err := m.Module(in[0])
			if err != nil {
				return nil, "", "", err
			}
			f, err := ResolveFunc(types, fn)
			return f, in[0], "", err
		case len(in) > 1:
			return nil, "", "", fmt.Errorf("function %s: %w (modules %s each define one: the kernel's loader takes the first loaded)", fn, ErrAmbiguous, strings.Join(in, ", "))
		case len(m.Names()) > 0:
			return nil, "", "", fmt.Errorf("%w, nor in the BTF of %s", err, m.namesPhrase())
		}
		return nil, "", "", err
	}
	types, err := m.Module(mod)
	if errors.Is(err, ErrNoModule) {
		if f, verr := ResolveFunc(vmlinux, fn); verr == nil {
			return f, "", fmt.Sprintf("module %s has no BTF here but vmlinux has %s: %s is built in, or another function of that name is traced", mod, fn, mod), nil
		}
	}
	if err != nil {
		return nil, "", "", err
	}
	f, err := ResolveFunc(types, fn)
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("module %s: %w", mod, err)
		if _, verr := ResolveFunc(vmlinux, fn); verr == nil {
			err = fmt.Errorf("%w; vmlinux has %s: write it without %s:", err, fn, mod)
		} else if in, _ := m.funcModules(fn, true); len(in) > 0 {
			err = fmt.Errorf("%w; module %s has it: write %s:%s", err, in[0], in[0], fn)
		}
	}
	if err != nil {
		return nil, "", "", err
	}
	if _, verr := ResolveFunc(vmlinux, fn); !errors.Is(verr, ErrNotFound) {
		return nil, "", "", fmt.Errorf("function %s: %w (vmlinux defines one too, and the kernel's loader takes vmlinux's over module %s's)", fn, ErrAmbiguous, mod)
	}
	return f, mod, "", nil
}

// namesPhrase is "module loop" or "modules dummy, loop", or "12 modules".
func (m *Modules) namesPhrase() string {
	names := m.Names()
	switch {
	case len(names) == 1:
		return "module " + names[0]
	case len(names) <= 8:
		return "modules " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("%d modules", len(names))
}
