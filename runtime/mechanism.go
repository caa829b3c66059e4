package runtime

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"

	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// Mechanism is how a probe got into the kernel: which programs and links
// stand for its stub.
type Mechanism int

const (
	// Trampoline is one program on one function or tracepoint, one link:
	// fentry, fexit, fmod_ret and tp_btf.
	Trampoline Mechanism = iota + 1
	// SessionNative is an fsession probe as one BPF_TRACE_FSESSION program
	// and one link (Linux 7.0 and later).
	SessionNative
	// SessionPair is an fsession probe as an fentry and an fexit program
	// sharing a per-call map: two programs, two links.
	SessionPair
	// MultiLink is a multi-function probe as one program and one tracing
	// multi-link (BPF_TRACE_FENTRY_MULTI, BPF_TRACE_FEXIT_MULTI).
	MultiLink
	// PerFunction is a multi-function probe as one program and one
	// trampoline link per function, sharing the maps.
	PerFunction
)

var mechanismNames = map[Mechanism]string{
	Trampoline:    "trampoline",
	SessionNative: "native fsession",
	SessionPair:   "fentry+fexit pair",
	MultiLink:     "tracing multi-link",
	PerFunction:   "one link per function",
}

func (m Mechanism) String() string {
	if n, ok := mechanismNames[m]; ok {
		return n
	}
	return fmt.Sprintf("Mechanism(%d)", int(m))
}

// MarshalText renders the mechanism's name.
func (m Mechanism) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a mechanism's name.
func (m *Mechanism) UnmarshalText(text []byte) error {
	for k, n := range mechanismNames {
		if n == string(text) {
			*m = k
			return nil
		}
	}
	return fmt.Errorf("unknown mechanism %q", text)
}

// errNoFsession wraps the reasons an fsession probe becomes a pair.
var errNoFsession = errors.New("no fsession")

// fsessionProbes caches, by target function, what [probeFsession] found.
var fsessionProbes = struct {
	sync.Mutex
	m map[string]error
}{m: map[string]error{}}

// probeFsession tells whether fsession programs attached to fn load on the
// running kernel: nil when they do; an error wrapping errNoFsession that
// says why not (no BPF_TRACE_FSESSION or session kfuncs in its BTF, or a
// minimal fsession program refused: EINVAL, EOPNOTSUPP from a JIT without
// fsession); or another error when the probe itself failed (EPERM: no
// privilege says nothing about fsession).
func probeFsession(fn string) error {
	fsessionProbes.Lock()
	defer fsessionProbes.Unlock()
	if err, ok := fsessionProbes.m[fn]; ok {
		return err
	}
	err := doProbeFsession(fn)
	if err == nil || errors.Is(err, errNoFsession) {
		fsessionProbes.m[fn] = err
	}
	return err
}

func doProbeFsession(fn string) error {
	spec, err := kernelBTF.Kernel()
	if err != nil {
		return fmt.Errorf("load the running kernel's BTF: %w", err)
	}
	if err := fbtf.Fsession(spec); err != nil {
		return fmt.Errorf("%w: %w", errNoFsession, err)
	}
	id, err := targetID(fn)
	if err != nil {
		return err
	}
	prog, err := loadRaw(rawProgram{Name: "fsession_probe", Attach: AttachTraceFsession, BTFID: id, Insns: Return(0)})
	switch {
	case err == nil:
		return prog.Close()
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("probe for fsession on %s: the kernel refused a minimal program: %w (tracing programs need root, or CAP_BPF with CAP_PERFMON)", fn, err)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, errENOTSUPP):
		return fmt.Errorf("%w: a minimal fsession program on %s was refused: %w", errNoFsession, fn, err)
	}
	return fmt.Errorf("probe for fsession on %s: %w", fn, err)
}

// targetID is the BTF id of the kernel function fn in the running
// kernel's BTF.
func targetID(fn string) (uint32, error) {
	spec, err := kernelBTF.Kernel()
	if err != nil {
		return 0, fmt.Errorf("load the running kernel's BTF: %w", err)
	}
	f, err := fbtf.ResolveFunc(spec, fn)
	if err != nil {
		return 0, err
	}
	id, err := spec.TypeID(f.BTF)
	return uint32(id), err
}

// sessionMechanism decides how the fsession probe info is loaded.
func sessionMechanism(opts Options, info Info) (Mechanism, error) {
	if opts.SessionPair {
		return SessionPair, nil
	}
	switch err := probeFsession(info.Target); {
	case err == nil:
		return SessionNative, nil
	case errors.Is(err, errNoFsession):
		return SessionPair, nil
	default:
		return 0, err
	}
}

// errNoMulti wraps the reasons a multi-function probe gets one link per
// function.
var errNoMulti = errors.New("no tracing multi-links")

// multiProbes caches, by attach type, what [probeMulti] found.
var multiProbes = struct {
	sync.Mutex
	m map[ebpf.AttachType]error
}{m: map[ebpf.AttachType]error{}}

// probeMulti tells whether tracing multi-links of attach type attach work
// on the running kernel: nil when they do; an error wrapping errNoMulti
// that says why not (not in its BTF, a minimal multi program refused, or
// a one-function link refused: EOPNOTSUPP without the ftrace direct-call
// support they need); or another error when the probe itself failed
// (EPERM). fn is a function to try the link on.
func probeMulti(attach ebpf.AttachType, fn string) error {
	multiProbes.Lock()
	defer multiProbes.Unlock()
	if err, ok := multiProbes.m[attach]; ok {
		return err
	}
	err := doProbeMulti(attach, fn)
	if err == nil || errors.Is(err, errNoMulti) {
		multiProbes.m[attach] = err
	}
	return err
}

func doProbeMulti(attach ebpf.AttachType, fn string) error {
	spec, err := kernelBTF.Kernel()
	if err != nil {
		return fmt.Errorf("load the running kernel's BTF: %w", err)
	}
	if err := fbtf.TracingMulti(spec); err != nil {
		return fmt.Errorf("%w: %w", errNoMulti, err)
	}
	refused := func(what string, err error) error {
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return fmt.Errorf("probe for tracing multi-links: the kernel refused %s: %w (tracing programs need root, or CAP_BPF with CAP_PERFMON)", what, err)
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, errENOTSUPP):
			return fmt.Errorf("%w: %s was refused: %w", errNoMulti, what, err)
		}
		return fmt.Errorf("probe for tracing multi-links: %s: %w", what, err)
	}
	prog, err := loadRaw(rawProgram{Name: "multi_probe", Attach: attach, Insns: Return(0)})
	if err != nil {
		return refused("a minimal multi program", err)
	}
	defer prog.Close()
	// A function the kernel keeps for BPF's own tests, else the probe's.
	if _, err := fbtf.ResolveFunc(spec, "bpf_fentry_test1"); err == nil {
		fn = "bpf_fentry_test1"
	}
	id, err := targetID(fn)
	if err != nil {
		return err
	}
	fd, err := linkTracingMulti(prog, attach, []uint32{id}, []uint64{0})
	if err != nil {
		return refused("a tracing multi-link on "+fn, err)
	}
	return unix.Close(fd)
}

// multiMechanism decides how the multi-function probe info is loaded; fn
// is one of its functions.
func multiMechanism(opts Options, info Info, fn string) (Mechanism, error) {
	if opts.PerFunction {
		return PerFunction, nil
	}
	switch err := probeMulti(info.attachType(), fn); {
	case err == nil:
		return MultiLink, nil
	case errors.Is(err, errNoMulti):
		return PerFunction, nil
	default:
		return 0, err
	}
}
