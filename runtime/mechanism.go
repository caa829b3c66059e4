package runtime

import (
	"errors"
	"fmt"
	"sync"

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
)

var mechanismNames = map[Mechanism]string{
	Trampoline:    "trampoline",
	SessionNative: "native fsession",
	SessionPair:   "fentry+fexit pair",
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
