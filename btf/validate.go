package btf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrorInjectionListPath lists the functions that allow error injection
// (ALLOW_ERROR_INJECTION) and so may be targeted by fmod_ret.
const ErrorInjectionListPath = "/sys/kernel/debug/error_injection/list"

// denied is the kernel's btf_id_deny set (kernel/bpf/verifier.c): functions
// that the verifier refuses as tracing targets whatever their BTF says.
var denied = map[string]bool{
	"migrate_disable":        true,
	"migrate_enable":         true,
	"rcu_read_unlock_strict": true,
	"preempt_count_add":      true,
	"preempt_count_sub":      true,
	"__rcu_read_lock":        true,
	"__rcu_read_unlock":      true,
	"bpf_lsm_task_free":      true,
	"bpf_lsm_sk_free":        true,
	"bpf_lsm_inode_free":     true,
	"bpf_lsm_file_free":      true,
}

// noreturn is the kernel's noreturn_deny set (kernel/bpf/verifier.c):
// functions that never return, which fexit, fsession and fmod_ret programs
// may not attach to (the trampoline would wait for a return forever).
var noreturn = map[string]bool{
	"__ia32_sys_exit":               true,
	"__ia32_sys_exit_group":         true,
	"__kunit_abort":                 true,
	"kunit_try_catch_throw":         true,
	"__module_put_and_kthread_exit": true,
	"__x64_sys_exit":                true,
	"__x64_sys_exit_group":          true,
	"do_exit":                       true,
	"do_group_exit":                 true,
	"kthread_complete_and_exit":     true,
	"make_task_dead":                true,
}

// Errors a Verdict can carry for one attach kind.
var (
	ErrDenied        = errors.New("in the kernel's deny list for tracing programs")
	ErrFmodRetReturn = errors.New("fmod_ret needs a function that returns an int")
	ErrNoInjection   = errors.New("fmod_ret needs a security_* hook or a function that allows error injection")
	ErrUnknownInject = errors.New("error-injection list not readable: eligibility unknown")
	ErrTooManyForX86 = errors.New("x86-64 kernels before 6.6 take at most 6 argument slots")
	ErrNoReturn      = errors.New("never returns (the kernel's noreturn deny list): only fentry can attach")
)

// ErrorInjection is the set of functions that allow error injection, as read
// from ErrorInjectionListPath; nil means the list could not be read.
type ErrorInjection map[string]bool

// ParseErrorInjection reads the format of ErrorInjectionListPath:
// "name\tTYPE" per line.
func ParseErrorInjection(r io.Reader) (ErrorInjection, error) {
	out := ErrorInjection{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out[f[0]] = true
		}
	}
	return out, sc.Err()
}

// Verdict says which attach kinds a function supports, and why not.
type Verdict struct {
	Func *Func
	// Module is the kernel module whose BTF defines Func, "" for vmlinux;
	// Scope is where the probe's types are looked up: Module's, then
	// vmlinux's (set by [Modules.Validate]).
	Module string
	Scope  Types
	// Err is why the function cannot be traced at all; nil when it can.
	Err error
	// Fentry, Fexit and FmodRet are nil when that kind is allowed; an
	// fsession can attach where fexit can.
	Fentry, Fexit, FmodRet error
	// Note holds caveats that BTF alone cannot settle.
	Notes []string
}

// Traceable reports whether any attach kind is allowed.
func (v *Verdict) Traceable() bool { return v.Err == nil }

// Validate tells whether name can be the target of fentry, fexit and fmod_ret
// programs. inject is the error-injection list, or nil when it is unknown.
func Validate(spec Types, name string, inject ErrorInjection) *Verdict {
	fn, err := ResolveFunc(spec, name)
	if err != nil {
		return failed(err)
	}
	v := judge(fn, inject)
	v.Scope = spec
	return v
}

// failed is the verdict on a function that cannot be traced at all.
func failed(err error) *Verdict {
	return &Verdict{Err: err, Fentry: err, Fexit: err, FmodRet: err}
}

// judge tells which attach kinds fn supports.
func judge(fn *Func, inject ErrorInjection) *Verdict {
	name := fn.Name
	v := &Verdict{}
	v.Func = fn
	if denied[name] {
		v.Err = fmt.Errorf("%s: %w", name, ErrDenied)
		v.Fentry, v.Fexit, v.FmodRet = v.Err, v.Err, v.Err
		return v
	}
	v.FmodRet = fmodRet(fn, inject)
	if noreturn[name] {
		v.Fexit = fmt.Errorf("%s: %w", name, ErrNoReturn)
		v.FmodRet = v.Fexit
	}
	if fn.NumSlots > MaxSlotsX86Pre66 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d argument slots: %v", fn.NumSlots, ErrTooManyForX86))
	}
	v.Notes = append(v.Notes, "BTF cannot show notrace or fully inlined functions; loading tells")
	return v
}

func fmodRet(fn *Func, inject ErrorInjection) error {
	if fn.Return.Kind != KindInt {
		return fmt.Errorf("%s returns %s: %w", fn.Name, fn.Return.CType, ErrFmodRetReturn)
	}
	if strings.HasPrefix(fn.Name, "security_") {
		return nil
	}
	if inject == nil {
		return fmt.Errorf("%s: %w", fn.Name, ErrUnknownInject)
	}
	if !inject[fn.Name] {
		return fmt.Errorf("%s: %w", fn.Name, ErrNoInjection)
	}
	return nil
}

// Save pairs an argument with the callee-saved register it is copied into.
type Save struct {
	Arg string
	Reg int
}

// SuggestSaves pairs the first four arguments with r6-r9, the only registers
// that survive helper calls (r10 is the read-only frame pointer). Aggregates
// spanning two slots are skipped: they do not fit one register.
func SuggestSaves(fn *Func) []Save {
	var out []Save
	reg := 6
	for _, p := range fn.Params {
		if reg > 9 {
			break
		}
		if p.Slots != 1 {
			continue
		}
		out = append(out, Save{Arg: p.Name, Reg: reg})
		reg++
	}
	return out
}
