package runtime

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// Kind is how a program attaches to its kernel function.
type Kind int

const (
	// Fentry runs before the function; it sees the arguments.
	Fentry Kind = iota + 1
	// Fexit runs after it; it sees the arguments and the return value.
	Fexit
	// FmodRet runs before it and may replace it by returning non-zero.
	FmodRet
	// TpBtf runs at a tracepoint (a BTF-typed raw tracepoint, tp_btf): the
	// same ctx of u64 slots, with the tracepoint's arguments.
	TpBtf
	// Fsession runs at the call and at the return, with a cookie per call
	// (BPF_TRACE_FSESSION, Linux 7.0); elsewhere an fentry and an fexit
	// program stand in for it (see [NewSession]).
	Fsession
)

// AttachTraceFsession is BPF_TRACE_FSESSION, which cilium/ebpf v0.22.0
// has no constant for.
const AttachTraceFsession ebpf.AttachType = 58

var kindNames = map[Kind]string{Fentry: "fentry", Fexit: "fexit", FmodRet: "fmod_ret", TpBtf: "tp_btf", Fsession: "fsession"}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText renders the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// AttachType maps k to cilium/ebpf's constant (BPF_TRACE_FENTRY 24,
// BPF_TRACE_FEXIT 25, BPF_MODIFY_RETURN 26, BPF_TRACE_RAW_TP 23,
// BPF_TRACE_FSESSION 58).
func (k Kind) AttachType() ebpf.AttachType {
	switch k {
	case Fentry:
		return ebpf.AttachTraceFEntry
	case Fexit:
		return ebpf.AttachTraceFExit
	case FmodRet:
		return ebpf.AttachModifyReturn
	case TpBtf:
		return ebpf.AttachTraceRawTp
	case Fsession:
		return AttachTraceFsession
	}
	return ebpf.AttachNone
}

// Tracepoint reports whether k attaches to a tracepoint, not a function.
func (k Kind) Tracepoint() bool { return k == TpBtf }

// ProgramType is the program type of every kind: BPF_PROG_TYPE_TRACING.
func (k Kind) ProgramType() ebpf.ProgramType { return ebpf.Tracing }

// SectionName is the ELF section libbpf would use: "fentry/fn",
// "fexit/fn", "fmod_ret/fn", with ".s" after the kind when sleepable.
func SectionName(k Kind, fn string, sleepable bool) string {
	s := k.String()
	if sleepable {
		s += ".s"
	}
	return s + "/" + fn
}

// ParseSection is the inverse of SectionName.
func ParseSection(section string) (k Kind, fn string, sleepable bool, err error) {
	prefix, fn, ok := strings.Cut(section, "/")
	if !ok || fn == "" {
		return 0, "", false, fmt.Errorf("section %q: want KIND/FUNCTION", section)
	}
	prefix, sleepable = strings.CutSuffix(prefix, ".s")
	for kind, name := range kindNames {
		if name == prefix {
			return kind, fn, sleepable, nil
		}
	}
	return 0, "", false, fmt.Errorf("section %q: unknown kind %q (want fentry, fexit, fmod_ret, tp_btf or fsession)", section, prefix)
}

// Info describes a program: what it attaches to and how.
type Info struct {
	// Name is the program's name (at most 15 bytes reach the kernel).
	Name   string
	Kind   Kind
	Target string
	// Targets, instead of Target, are the functions a multi-function
	// probe attaches to: names and glob patterns (see [NewMulti]).
	Targets []string
	// Module is the kernel module whose function Target is ("" for
	// vmlinux's): its BTF types the arguments. The module must be loaded
	// (or built in) where the program loads.
	Module    string
	Sleepable bool
}

// SectionName is the program's ELF section name: libbpf's
// "fentry.multi/PATTERN" for a multi-function probe, MODULE:FUNC for a
// module's function ("fentry/loop:lo_ioctl").
func (i Info) SectionName() string {
	if len(i.Targets) > 0 {
		s := i.Kind.String() + ".multi"
		if i.Sleepable {
			s += ".s"
		}
		return s + "/" + strings.Join(i.Targets, ",")
	}
	return SectionName(i.Kind, fbtf.JoinTarget(i.Module, i.Target), i.Sleepable)
}

// attachType is the program's expected attach type: its kind's, or for a
// multi-function probe BPF_TRACE_FENTRY_MULTI or BPF_TRACE_FEXIT_MULTI.
func (i Info) attachType() ebpf.AttachType {
	switch {
	case len(i.Targets) > 0 && i.Kind == Fentry:
		return AttachTraceFentryMulti
	case len(i.Targets) > 0 && i.Kind == Fexit:
		return AttachTraceFexitMulti
	}
	return i.Kind.AttachType()
}

// ProgramSpec wraps finished instructions into a spec ready for
// ebpf.NewProgram and link.AttachTracing.
func (i Info) ProgramSpec(insns asm.Instructions) *ebpf.ProgramSpec {
	spec := &ebpf.ProgramSpec{
		Name:         KernelName(i.Name),
		Type:         i.Kind.ProgramType(),
		AttachType:   i.attachType(),
		AttachTo:     i.Target,
		SectionName:  i.SectionName(),
		Instructions: insns,
		License:      "GPL",
	}
	if i.Sleepable {
		spec.Flags |= unix.BPF_F_SLEEPABLE
	}
	return spec
}

// KernelName keeps what the kernel accepts in a program name: 15 bytes of
// letters, digits and underscores.
func KernelName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len() == 15 {
			break
		}
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
