package gen

import (
	"errors"
	"fmt"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/runtime"
)

// Verdict is what one kernel's BTF says of one probe: fine, or what is
// missing or changed. Notes are differences that loading handles (a member
// that is a bitfield on one kernel and not another).
type Verdict struct {
	Problems []string `json:"problems,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	// Mechanism is how the probe loads there, for kinds that load
	// differently by kernel (fsession: native or a pair), and Why says
	// why it is not the native one.
	Mechanism runtime.Mechanism `json:"mechanism,omitempty"`
	Why       string            `json:"why,omitempty"`
}

// OK reports whether the probe would load there, as far as BTF tells.
func (v Verdict) OK() bool { return len(v.Problems) == 0 }

// Kernel is what is known of a kernel besides its BTF.
type Kernel struct {
	// Release is its version ("6.1", "6.12.117+deb12-cloud-amd64"), or "".
	Release string
	// Inject is its error-injection list, or nil when unknown.
	Inject fbtf.ErrorInjection
	// Modules has the BTF of its modules, built on the spec checked
	// against; nil: only those a snapshot spec keeps.
	Modules *fbtf.Modules
	// NoModule says what a module without BTF there means, a format with
	// one %s for the module ("not loaded: load it before the probe
	// (modprobe %s)" when empty).
	NoModule string
}

// before reports whether the release is known and older than major.minor.
func (k Kernel) before(major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(k.Release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma < major || ma == major && mi < minor
}

// Check tells whether p's target, the arguments it reads and the members
// it follows are in spec as the model has them: the checks loading makes
// (relocation) and the kernel's refusals BTF (and the release) can tell.
func Check(p *Probe, spec *cbtf.Spec, k Kernel) Verdict {
	inject := k.Inject
	var v Verdict
	problem := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	mods := k.Modules
	if mods == nil {
		mods = fbtf.NewModules(spec, nil)
	}
	if p.Multi != nil {
		return checkMulti(p, spec, mods.Vmlinux(), k)
	}
	var scope fbtf.Types = mods.Vmlinux()
	var f *fbtf.Func
	if p.Kind == runtime.TpBtf {
		var err error
		if f, err = fbtf.ResolveTracepoint(spec, p.Target); err != nil {
			problem("%v", err)
			return v
		}
	} else {
		// A vmlinux function is looked for in vmlinux alone: searching
		// every module (a kernel package has a thousand) for one that
		// went missing would cost more than it tells.
		val := fbtf.Validate(mods.Vmlinux(), p.Target, inject)
		if p.Module != "" {
			val = mods.Validate(p.Module, p.Target, inject)
		}
		if !val.Traceable() {
			if errors.Is(val.Err, fbtf.ErrNoModule) {
				hint := k.NoModule
				if hint == "" {
					hint = "not loaded: load it before the probe (modprobe %s)"
				}
				problem("%v: %s", val.Err, fmt.Sprintf(hint, p.Module))
				return v
			}
			problem("%v", val.Err)
			return v
		}
		f, scope = val.Func, val.Scope
		if p.Module != "" && val.Module == "" {
			// The module has no BTF there, but vmlinux has the function.
			v.Notes = append(v.Notes, val.Notes[0])
		}
		if (p.Kind == runtime.Fexit || p.Kind == runtime.Fsession) && val.Fexit != nil {
			problem("%v", val.Fexit)
		}
		if p.Kind == runtime.Fsession {
			v.Mechanism = runtime.SessionNative
			if err := fbtf.Fsession(spec); err != nil {
				v.Mechanism, v.Why = runtime.SessionPair, err.Error()
			}
		}
		switch {
		case p.Kind == runtime.FmodRet && errors.Is(val.FmodRet, fbtf.ErrUnknownInject):
			v.Notes = append(v.Notes, "fmod_ret: error-injection list unknown")
		case p.Kind == runtime.FmodRet && val.FmodRet != nil:
			problem("%v", val.FmodRet)
		}
		switch {
		case f.NumSlots <= fbtf.MaxSlotsX86Pre66:
		case k.before(6, 6):
			problem("%s takes %d argument slots and x86-64 kernels before 6.6 take %d", p.Target, f.NumSlots, fbtf.MaxSlotsX86Pre66)
		case k.Release == "":
			v.Notes = append(v.Notes, fmt.Sprintf("%d argument slots: x86-64 kernels before 6.6 take %d", f.NumSlots, fbtf.MaxSlotsX86Pre66))
		}
	}
	checkArgs(p, f, problem)
	checkUses(p, scope, &v)
	return v
}

// checkMulti is Check for a probe on several functions: its names and
// patterns resolved in spec as Load resolves them, the arguments it reads
// in each function, and how it attaches there: one tracing multi-link,
// whose program reads each argument from one slot in every function, or
// one link per function.
func checkMulti(p *Probe, spec *cbtf.Spec, vmlinux fbtf.Types, k Kernel) Verdict {
	var v Verdict
	problem := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	m, err := fbtf.MatchFuncs(spec, p.Multi.Targets, p.Kind == runtime.Fexit)
	if err != nil {
		problem("%v", err)
		return v
	}
	v.Mechanism = runtime.MultiLink
	if err := fbtf.TracingMulti(spec); err != nil {
		v.Mechanism, v.Why = runtime.PerFunction, err.Error()
	}
	for _, name := range m.Missing {
		v.Notes = append(v.Notes, fmt.Sprintf("%s is not in this kernel: left out", name))
	}
	for _, s := range m.Skipped {
		v.Notes = append(v.Notes, fmt.Sprintf("left out: %v", s.Reason))
	}
	var funcs []*fbtf.Func
	for _, f := range m.Funcs {
		switch {
		case f.NumSlots <= fbtf.MaxSlotsX86Pre66:
		case k.before(6, 6):
			v.Notes = append(v.Notes, fmt.Sprintf("%s left out: %d argument slots, and x86-64 kernels before 6.6 take %d", f.Name, f.NumSlots, fbtf.MaxSlotsX86Pre66))
			continue
		}
		funcs = append(funcs, f)
	}
	if len(funcs) == 0 {
		problem("no function of this kernel matches %s", p.Target)
		return v
	}
	for _, f := range funcs {
		checkArgs(p, f, func(format string, args ...any) { problem("in %s: "+format, append([]any{f.Name}, args...)...) })
	}
	if v.Mechanism == runtime.MultiLink {
		for _, name := range p.ArgsUsed {
			slots := map[int][]string{}
			for _, f := range funcs {
				val := f.Return
				if name != "ret" {
					var err error
					if val, err = f.Arg(name); err != nil {
						continue
					}
				}
				slots[val.Slot] = append(slots[val.Slot], f.Name)
			}
			if name != "ret" && len(slots) > 1 {
				problem("argument %s is in different slots (%v): one multi-link program reads one slot", name, slots)
			}
		}
	}
	checkUses(p, vmlinux, &v)
	return v
}

// checkArgs checks the arguments p reads against f.
func checkArgs(p *Probe, f *fbtf.Func, problem func(format string, args ...any)) {
	args := map[string]*Arg{}
	for _, a := range append(append([]*Arg{}, p.Args...), p.Ret) {
		if a != nil {
			args[a.CName] = a
		}
	}
	for _, name := range p.ArgsUsed {
		a := args[name]
		if a == nil {
			continue
		}
		kv := f.Return
		if a != p.Ret {
			var err error
			if kv, err = f.Arg(name); err != nil {
				problem("%v", err)
				continue
			}
		}
		if want := argSize(a); want != 0 && kv.Size != want {
			problem("%s is %d bytes, %d when generated", argWhat(a, p), kv.Size, want)
		}
		if (a.Kind == ValuePtr) != (kv.Kind == fbtf.KindPointer) {
			problem("%s is %s, %s when generated", argWhat(a, p), kv.CType, a.CType)
		}
	}
}

// checkUses checks the member paths p follows in scope.
func checkUses(p *Probe, scope fbtf.Types, v *Verdict) {
	problem := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	for _, u := range p.Uses {
		m, err := fbtf.ResolveMember(scope, u.Base, u.Path)
		if err != nil {
			problem("%s.%s: %v (read at %s)", u.Base, u.Path, err, u.Pos.Short())
			continue
		}
		if u.Size != 0 {
			size, err := cbtf.Sizeof(m.Last().Type)
			if err == nil && size != u.Size {
				problem("%s.%s is %d bytes, %d when generated (read at %s)", u.Base, u.Path, size, u.Size, u.Pos.Short())
			}
		}
		if m.IsBitfield() {
			v.Notes = append(v.Notes, fmt.Sprintf("%s.%s is a %d-bit bitfield here", u.Base, u.Path, m.BitSize))
		}
	}
}

func argWhat(a *Arg, p *Probe) string {
	if a == p.Ret {
		return "the return value"
	}
	return "argument " + a.CName
}

// argSize is the size a probe reads an argument with (0 when any size
// fits: a pointer read as a pointer).
func argSize(a *Arg) int {
	if a.Kind == ValuePtr {
		return 0
	}
	return memberSize(&Member{Kind: ValueScalar, GoType: a.GoType})
}
