package btf

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// A probe can attach to many functions at once: a list of names and glob
// patterns (path.Match syntax: vfs_*, tcp_v?_connect) resolved against a
// kernel's BTF.

// ErrStructReturn is why a function returning a struct or union is left
// out of a multi-function probe (libbpf leaves it out too: the trampoline
// of a multi-link reads the return value as one register).
var ErrStructReturn = errors.New("returns a struct or union by value")

// IsPattern reports whether s is a glob pattern rather than a name.
func IsPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// Skip is a function a pattern matched, or a list named, that a
// multi-function probe cannot attach to, and why.
type Skip struct {
	Name   string
	Reason error
}

// Match is what a list of names and patterns resolves to in one BTF.
type Match struct {
	// Funcs are the functions to attach to, sorted by name.
	Funcs []*Func
	// Skipped are functions named or matched that cannot be attached to,
	// sorted by name; Missing are names that are not in the BTF at all.
	Skipped []Skip
	Missing []string
}

// Names are the names of m.Funcs.
func (m *Match) Names() []string {
	out := make([]string, len(m.Funcs))
	for i, f := range m.Funcs {
		out[i] = f.Name
	}
	return out
}

// MatchFuncs resolves targets, names and glob patterns, against spec's
// functions for a probe attached to all of them: fentry, or fexit when
// fexit is set (functions that never return are left out). The result
// depends on spec alone, not on the order of its types. A malformed
// pattern is an error.
func MatchFuncs(spec *cbtf.Spec, targets []string, fexit bool) (*Match, error) {
	m := &Match{}
	names := map[string]bool{}
	var patterns []string
	for _, t := range targets {
		if !IsPattern(t) {
			names[t] = true
			continue
		}
		if _, err := path.Match(t, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", t, err)
		}
		patterns = append(patterns, t)
	}
	if len(patterns) > 0 {
		for t, err := range spec.All() {
			if err != nil {
				return nil, err
			}
			fn, ok := t.(*cbtf.Func)
			if !ok || names[fn.Name] {
				continue
			}
			for _, p := range patterns {
				if ok, _ := path.Match(p, fn.Name); ok {
					names[fn.Name] = true
					break
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		f, err := ResolveFunc(spec, name)
		switch {
		case errors.Is(err, ErrNotFound):
			m.Missing = append(m.Missing, name)
		case err != nil:
			m.Skipped = append(m.Skipped, Skip{name, err})
		default:
			if err := multiEligible(f, fexit); err != nil {
				m.Skipped = append(m.Skipped, Skip{name, err})
				continue
			}
			m.Funcs = append(m.Funcs, f)
		}
	}
	return m, nil
}

// multiEligible tells whether a multi-function probe can attach to fn,
// with the rules of libbpf's btf_type_is_traceable_func and the kernel's
// deny lists.
func multiEligible(fn *Func, fexit bool) error {
	switch {
	case denied[fn.Name]:
		return fmt.Errorf("%s: %w", fn.Name, ErrDenied)
	case fexit && noreturn[fn.Name]:
		return fmt.Errorf("%s: %w", fn.Name, ErrNoReturn)
	case fn.Return.Kind == KindAggregate:
		return fmt.Errorf("%s %w", fn.Name, ErrStructReturn)
	}
	return nil
}

// TracingMulti reports whether the kernel of spec has tracing multi-links
// (BPF_TRACE_FENTRY_MULTI and BPF_TRACE_FEXIT_MULTI, one link attaching
// one program to many functions); the error says what is missing.
func TracingMulti(spec *cbtf.Spec) error {
	for _, v := range []string{"BPF_TRACE_FENTRY_MULTI", "BPF_TRACE_FEXIT_MULTI"} {
		if !hasEnumValue(spec, "bpf_attach_type", v) {
			return fmt.Errorf("%s (tracing multi-links, Linux 7) %w", v, ErrNoFeature)
		}
	}
	var fn *cbtf.Func
	if spec.TypeByName("bpf_multi_func", &fn) != nil {
		return fmt.Errorf("bpf_multi_func, the attach point of multi programs, %w", ErrNoFeature)
	}
	return nil
}
