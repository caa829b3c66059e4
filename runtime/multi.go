package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// A multi-function probe is one fentry or fexit stub attached to many
// functions: a list of names and glob patterns (Info.Targets), resolved
// against the BTF of the kernel it loads on. Where the kernel has tracing
// multi-links (BPF_TRACE_FENTRY_MULTI, BPF_TRACE_FEXIT_MULTI) the stub
// builds one program and one link attaches it to every function at once.
// Such a program reads nothing from ctx directly (its attach point is the
// parameterless bpf_multi_func): arguments come from bpf_get_func_arg,
// the return value from bpf_get_func_ret, and pointer arguments are
// untyped, read with bpf_probe_read_kernel. Elsewhere the stub builds one
// program per function, each attached by its own trampoline link, sharing
// the maps. Either way [FuncIndex] is the traced function's position in
// the list the load resolved ([Objects.Targets]), and [FuncIP] its
// address.

// multiBuild is what a multi-function program holds.
type multiBuild struct {
	info  Info
	build func(p *Program)
	// one is set for the program of one function of the list (index
	// index), cleared for the multi-link program.
	one   bool
	index int
	// fns is the list the multi-link program is built for, once resolved
	// (nil: resolve against the target's BTF).
	fns []string
}

// Attach types of tracing multi-links, which cilium/ebpf v0.22.0 has no
// constants for.
const (
	AttachTraceFentryMulti ebpf.AttachType = 59 // BPF_TRACE_FENTRY_MULTI
	AttachTraceFexitMulti  ebpf.AttachType = 60 // BPF_TRACE_FEXIT_MULTI
)

// NewMulti builds the multi-function probe info describes (info.Targets
// set) by running build on it: one program for a tracing multi-link.
// [LoadPackage] asks it for one program per function where the kernel has
// no multi-links ([Program.PerFunction]), running build again for each.
// Generated code calls it; build runs the stub.
func NewMulti(info Info, build func(p *Program)) *Program {
	return buildMulti(info, build, -1, "")
}

func buildMulti(info Info, build func(p *Program), index int, fn string) *Program {
	i := info
	if index >= 0 {
		i.Targets, i.Target, i.Name = nil, fn, info.Name+"."+fn
	}
	p := New(i)
	p.multi = &multiBuild{info: info, build: build, one: index >= 0, index: index}
	switch {
	case len(info.Targets) == 0:
		p.fail(errors.New("NewMulti without Targets"))
		return p
	case info.Kind != Fentry && info.Kind != Fexit:
		p.fail(fmt.Errorf("%s probes attach to one function each: many at once are fentry or fexit", info.Kind))
		return p
	case info.Target != "":
		p.fail(fmt.Errorf("a multi-function probe has Targets, not Target (%s)", info.Target))
		return p
	}
	build(p)
	return p
}

// multiLink reports whether p is the program of a tracing multi-link.
func (p *Program) multiLink() bool { return p.multi != nil && !p.multi.one }

// PerFunction returns the programs that stand in for the multi-function
// program p on kernels without tracing multi-links: one per function of
// fns, built from the same stub, each attached to its function, where
// [FuncIndex] is the function's position in fns.
func (p *Program) PerFunction(fns []string) ([]*Program, error) {
	m := p.multi
	if m == nil || m.one {
		return nil, fmt.Errorf("program %s: not a multi-function probe", p.info.Name)
	}
	out := make([]*Program, len(fns))
	for i, fn := range fns {
		out[i] = buildMulti(m.info, m.build, i, fn)
		if err := out[i].Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withTargets is a copy of the multi-link program p built for fns.
func (p *Program) withTargets(fns []string) *Program {
	q := *p
	m := *p.multi
	m.fns = fns
	q.multi = &m
	return &q
}

// FuncIndex is the traced function's position in the list of functions
// the probe was loaded for ([Objects.Targets]): `bpf_get_attach_cookie(ctx)`
// on a tracing multi-link (whose cookies are the positions), a constant in
// the program of one function. Only multi-function probes have it.
func FuncIndex(c Ctx) U32 {
	p := c.program()
	switch {
	case p.multi == nil:
		return numOf[uint32](errExpr{fmt.Errorf("FuncIndex in a probe of one function (%s)", p.info.Target)})
	case p.multi.one:
		return Uint32(uint32(p.multi.index))
	}
	return helperWith[uint32](asm.Instructions{asm.Mov.Reg(asm.R1, CtxReg)}, asm.FnGetAttachCookie, extZero, nil)
}

// multiLoad emits the read of an argument or the return value in a
// multi-link program: `bpf_get_func_arg(ctx, slot, &tmp)` or
// `bpf_get_func_ret(ctx, &tmp)`, then `dst = tmp`. slot is relocated: it
// must be one slot in every function of the list.
func multiLoad(p *Program, dst asm.Register, r *relocation, slot int) {
	tmp := p.tempSlot()
	defer p.freeSlot(tmp)
	if r.role == roleRetSlot {
		p.Emit(
			asm.Mov.Reg(asm.R1, CtxReg),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, int32(tmp)),
			withReloc(asm.FnGetFuncRet.Call(), r),
		)
	} else {
		p.Emit(
			asm.Mov.Reg(asm.R1, CtxReg),
			withReloc(asm.Mov.Imm(asm.R2, int32(slot)), r),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, int32(tmp)),
			asm.FnGetFuncArg.Call(),
		)
	}
	p.Emit(asm.LoadMem(dst, asm.RFP, tmp, asm.DWord))
}

// ResolveTargets resolves a multi-function probe's Targets against spec:
// the functions to attach to, sorted by name, and notes on the names and
// matches left out. No function is an error.
func ResolveTargets(target Target, info Info) ([]string, []string, error) {
	m, err := fbtf.MatchFuncs(target.Spec, info.Targets, info.Kind == Fexit)
	if err != nil {
		return nil, nil, fmt.Errorf("probe %s: %w", info.Name, err)
	}
	var notes []string
	for _, name := range m.Missing {
		notes = append(notes, fmt.Sprintf("%s: %s is not in the BTF of %s: skipped", info.Name, name, target.Name))
	}
	for _, s := range m.Skipped {
		notes = append(notes, fmt.Sprintf("%s: %s skipped: %v", info.Name, s.Name, s.Reason))
	}
	if len(m.Funcs) == 0 {
		return nil, notes, fmt.Errorf("probe %s: no function of %s matches %s%s", info.Name, target.Name, strings.Join(info.Targets, ","), noteList(notes))
	}
	return m.Names(), notes, nil
}

func noteList(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, "; ") + ")"
}

// ftraceFunctions are the functions the running kernel can attach
// trampolines to (tracefs available_filter_functions), or nil when the
// file cannot be read.
func ftraceFunctions() map[string]bool {
	for _, path := range []string{"/sys/kernel/tracing/available_filter_functions", "/sys/kernel/debug/tracing/available_filter_functions"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		out := map[string]bool{}
		for _, line := range strings.Split(string(data), "\n") {
			name, _, _ := strings.Cut(line, " ")
			if name != "" {
				out[name] = true
			}
		}
		return out
	}
	return nil
}
