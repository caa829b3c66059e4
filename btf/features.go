package btf

import (
	"errors"
	"fmt"

	cbtf "github.com/cilium/ebpf/btf"
)

// Kernel features that BTF shows: an attach type is in the kernel's enum
// bpf_attach_type, a kfunc is a FUNC with the prototype the program calls.
// What BTF cannot show (JIT support, a config option) only a load tells.

// The session kfuncs: at both runs of an fsession program, whether this is
// the run at the return, and a pointer to the call's u64 cookie. Linux 6.10
// added them for kprobe sessions without parameters; Linux 7.0 gave them
// the program's ctx.
const (
	KfuncSessionIsReturn = "bpf_session_is_return"
	KfuncSessionCookie   = "bpf_session_cookie"
)

// ErrNoFeature is wrapped by the errors of [Fsession].
var ErrNoFeature = errors.New("not in this kernel")

// Fsession reports whether the kernel of spec has fsession programs
// (BPF_TRACE_FSESSION) with the session kfuncs taking ctx; the error says
// what is missing.
func Fsession(spec *cbtf.Spec) error {
	if !hasEnumValue(spec, "bpf_attach_type", "BPF_TRACE_FSESSION") {
		return fmt.Errorf("BPF_TRACE_FSESSION (Linux 7.0) %w", ErrNoFeature)
	}
	for _, name := range []string{KfuncSessionIsReturn, KfuncSessionCookie} {
		if _, err := Kfunc(spec, name, 1); err != nil {
			return err
		}
	}
	return nil
}

// Kfunc returns the BTF id of the kernel function name that BPF programs
// call, checking that it takes params parameters (a kfunc whose prototype
// changed is not the one the program was built for).
func Kfunc(spec *cbtf.Spec, name string, params int) (cbtf.TypeID, error) {
	var fn *cbtf.Func
	if err := spec.TypeByName(name, &fn); err != nil {
		return 0, fmt.Errorf("kfunc %s %w", name, ErrNoFeature)
	}
	proto, ok := fn.Type.(*cbtf.FuncProto)
	if !ok {
		return 0, fmt.Errorf("kfunc %s has no prototype", name)
	}
	if len(proto.Params) != params {
		return 0, fmt.Errorf("kfunc %s takes %d parameter(s) here, not %d (the session kfuncs took no ctx before Linux 7.0): %w", name, len(proto.Params), params, ErrNoFeature)
	}
	return spec.TypeID(fn)
}

// hasEnumValue reports whether the enum called enum has a value called
// value.
func hasEnumValue(spec *cbtf.Spec, enum, value string) bool {
	var e *cbtf.Enum
	if spec.TypeByName(enum, &e) != nil {
		return false
	}
	for _, v := range e.Values {
		if v.Name == value {
			return true
		}
	}
	return false
}
