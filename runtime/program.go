package runtime

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// exitLabel marks the program's epilogue; filters and Exit jump there.
const exitLabel = "exit"

// Program builds one fentry, fexit or fmod_ret program. Its prologue keeps
// ctx in r6 ([CtxReg]); values compute themselves into registers where
// they are used; labels are unique and deterministic; the first error is
// kept and reported by [Program.Instructions] and [Program.Spec], so
// building code need not check each call.
//
// A stub sees a Program through its [Probe]: the same building blocks
// without the low-level ones (Emit, Alloc, Label).
type Program struct {
	info    Info
	insns   asm.Instructions
	maps    map[string]*ebpf.MapSpec
	labels  map[string]int
	pending string
	alias   map[string]string
	stack   int
	free    []int16
	err     error
	probe   *Probe
	// dead is set after an unconditional jump or exit until a label that
	// is jumped to: the verifier refuses unreachable instructions, so
	// none are emitted.
	dead bool
	refs map[string]bool
	// held are the callee-saved registers lent by holdReg.
	held regs
	// from is the function the stub was written for when the program was
	// retargeted to info.Target ("" otherwise).
	from string
	// sess is set for fsession programs and their halves, multi for
	// multi-function programs.
	sess  *session
	multi *multiBuild
}

// New starts a program: `r6 = r1` (ctx survives helper calls there).
func New(info Info) *Program {
	p := &Program{info: info, maps: map[string]*ebpf.MapSpec{}, labels: map[string]int{}, alias: map[string]string{}, refs: map[string]bool{}}
	p.probe = &Probe{p: p}
	if _, ok := kindNames[info.Kind]; !ok {
		p.fail(fmt.Errorf("unknown kind %v", info.Kind))
	}
	p.Emit(asm.Mov.Reg(CtxReg, asm.R1))
	return p
}

// Info returns what the program attaches to.
func (p *Program) Info() Info { return p.info }

// Err is the first error met while building, if any.
func (p *Program) Err() error { return p.err }

func (p *Program) fail(err error) {
	if p.err == nil {
		p.err = fmt.Errorf("program %s: %w", p.info.Name, err)
	}
}

// Probe is the program as stubs see it.
func (p *Program) Probe() *Probe { return p.probe }

func (p *Program) program() *Program { return p }

// Emit appends instructions; a pending label lands on the first.
// Instructions that cannot be reached (after an exit or unconditional jump,
// before a label something jumps to) are dropped.
func (p *Program) Emit(insns ...asm.Instruction) {
	for _, ins := range insns {
		if p.dead && p.pending == "" {
			continue
		}
		if p.pending != "" {
			ins = ins.WithSymbol(p.pending)
			p.pending = ""
		}
		if ins.OpCode.Class().IsJump() && ins.Reference() != "" {
			p.refs[ins.Reference()] = true
		}
		p.insns = append(p.insns, ins)
		op := ins.OpCode.JumpOp()
		p.dead = ins.OpCode.Class().IsJump() && (op == asm.Exit || op == asm.Ja)
	}
}

func (p *Program) emitAll(insns asm.Instructions) { p.Emit(insns...) }

// unemit drops the instruction emitted at index i when nothing can refer
// to it: it carries no label and is not a jump (code after it moves up,
// and jumps name labels, not offsets).
func (p *Program) unemit(i int) {
	if i < 0 || i >= len(p.insns) || p.insns[i].Symbol() != "" || p.insns[i].OpCode.Class().IsJump() {
		return
	}
	p.insns = append(p.insns[:i], p.insns[i+1:]...)
}

// Label returns a new label name: prefix_N, N counting per prefix from 0, so
// the same building code always yields the same names.
func (p *Program) Label(prefix string) string {
	n := p.labels[prefix]
	p.labels[prefix] = n + 1
	return fmt.Sprintf("%s_%d", prefix, n)
}

// Mark places label on the next instruction emitted. Jumps to a label are
// emitted before it is marked; a label nothing jumps to after dead code
// leaves the code dead.
func (p *Program) Mark(label string) {
	if p.dead && !p.referenced(label) {
		return
	}
	if p.pending != "" {
		p.alias[label] = p.pending
		return
	}
	p.pending = label
}

// referenced reports whether an emitted jump targets label or a label
// aliased to it.
func (p *Program) referenced(label string) bool {
	if p.refs[label] {
		return true
	}
	for from, to := range p.alias {
		if to == label && p.referenced(from) {
			return true
		}
	}
	return false
}

// Alloc reserves size bytes of stack for the rest of the program,
// 8-aligned, and returns their offset from r10 (negative).
func (p *Program) Alloc(size int) int16 {
	p.stack += (size + 7) &^ 7
	if p.stack > StackLimit {
		p.fail(fmt.Errorf("stack use of %d bytes exceeds %d", p.stack, StackLimit))
		return -StackLimit
	}
	return int16(-p.stack)
}

// tempSlot lends 8 bytes of stack until freeSlot gives them back.
func (p *Program) tempSlot() int16 {
	if n := len(p.free); n > 0 {
		off := p.free[n-1]
		p.free = p.free[:n-1]
		return off
	}
	return p.Alloc(8)
}

func (p *Program) freeSlot(off int16) { p.free = append(p.free, off) }

// holdReg lends a callee-saved register, r9 down to r7, until releaseReg
// gives it back; r6 holds the ctx.
func (p *Program) holdReg() (asm.Register, bool) {
	for r := asm.R9; r >= asm.R7; r-- {
		if p.held&(1<<r) == 0 {
			p.held |= 1 << r
			return r, true
		}
	}
	return 0, false
}

func (p *Program) releaseReg(r asm.Register) { p.held &^= 1 << r }

// useMap records that the program refers to the map spec.Name.
func (p *Program) useMap(key string, spec *ebpf.MapSpec) {
	if old, ok := p.maps[key]; ok && !sameMap(old, spec) {
		p.fail(fmt.Errorf("two different maps called %s", key))
		return
	}
	p.maps[key] = spec
}

func sameMap(a, b *ebpf.MapSpec) bool {
	return a.Type == b.Type && a.KeySize == b.KeySize && a.ValueSize == b.ValueSize && a.MaxEntries == b.MaxEntries && a.Flags == b.Flags
}

// Ringbuf declares a ring buffer map of size bytes (a power of two and a
// multiple of the page size) that events are written to, and the per-CPU
// counter of events it had no room for. Programs loaded together by [Load]
// share maps of one name.
func (p *Program) Ringbuf(name string, size uint32) {
	if err := checkRingbufSize(size); err != nil {
		p.fail(fmt.Errorf("ring buffer %s: %w", name, err))
		return
	}
	p.useMap(name, ringbufSpec(name, size))
	p.useMap(lostName(name), lostSpec(name))
}

// Maps returns the maps the program refers to, by name.
func (p *Program) Maps() map[string]*ebpf.MapSpec { return p.maps }

// Load emits code that leaves v in dst, extended to 64 bits. dst must be
// r0-r5 or r7-r9: r6 holds ctx and r10 is read-only.
func (p *Program) Load(dst asm.Register, v Value) {
	if dst == CtxReg || dst == asm.RFP {
		p.fail(fmt.Errorf("load into %s: r6 holds ctx and r10 is read-only", dst))
		return
	}
	s := v.scalar()
	if s.e == nil {
		p.fail(errors.New("load of a zero value"))
		return
	}
	s.load(p, dst, callerSaved.without(dst))
}

// If emits `if (c) { then }`. then may emit anything, including Exit,
// Return and nested Ifs.
func (p *Program) If(c Cond, then func()) {
	end := p.Label("endif")
	c.valid().jump(p, false, end)
	then()
	p.Mark(end)
}

// IfElse emits `if (c) { then } else { els }`.
func (p *Program) IfElse(c Cond, then, els func()) {
	other, end := p.Label("else"), p.Label("endif")
	c.valid().jump(p, false, other)
	then()
	p.Emit(asm.Ja.Label(end))
	p.Mark(other)
	els()
	p.Mark(end)
}

// Exit ends the program here: `return 0` (for fmod_ret, the traced
// function runs as usual).
func (p *Program) Exit() { p.Emit(asm.Ja.Label(exitLabel)) }

// MaxErrno is the largest errno an fmod_ret program may return (as -errno).
const MaxErrno = 4095

// Return emits `return v` here. Only fmod_ret programs may return non-zero:
// 0 lets the traced function run, and -errno (-4095 to -1) skips it and
// makes -errno its result.
func (p *Program) Return(v int32) {
	switch {
	case v != 0 && p.info.Kind != FmodRet:
		p.fail(fmt.Errorf("%s programs must return 0, not %d", p.info.Kind, v))
		return
	case v > 0:
		p.fail(fmt.Errorf("fmod_ret returns 0 or a negative errno, not %d: a positive value would become the traced function's result (did you mean %d?)", v, -v))
		return
	case v < -MaxErrno:
		p.fail(fmt.Errorf("fmod_ret returns 0 or a negative errno (-%d to -1), not %d", MaxErrno, v))
		return
	}
	p.emitAll(Return(v))
}

// FilterTgid skips the rest of the program unless the current process
// (thread group) id is tgid.
func (p *Program) FilterTgid(tgid uint32) { p.If(TgidValue().Ne(tgid), p.Exit) }

// FilterTid skips the rest of the program unless the current thread id is
// tid.
func (p *Program) FilterTid(tid uint32) { p.If(TidValue().Ne(tid), p.Exit) }

// FilterComm skips the rest of the program unless the current task's comm is
// exactly comm (all 16 bytes compared).
func (p *Program) FilterComm(comm string) {
	off := p.Alloc(CommLen)
	insns, err := FilterComm(comm, off, exitLabel)
	if err != nil {
		p.fail(err)
		return
	}
	p.emitAll(insns)
}

// Instructions finishes the program (epilogue `exit: return 0`) and returns
// its instructions with member paths not yet resolved.
func (p *Program) Instructions() (asm.Instructions, error) {
	if p.err != nil {
		return nil, p.err
	}
	out := make(asm.Instructions, 0, len(p.insns)+2)
	out = append(out, p.insns...)
	// Labels that fell on one spot point at the one placed there; one still
	// pending at the end falls on the epilogue.
	alias := make(map[string]string, len(p.alias)+1)
	for k, v := range p.alias {
		alias[k] = v
	}
	if p.pending != "" {
		alias[p.pending] = exitLabel
	}
	if !p.dead || p.pending != "" || p.refs[exitLabel] {
		epilogue := Return(0)
		epilogue[0] = epilogue[0].WithSymbol(exitLabel)
		out = append(out, epilogue...)
	}
	for i := range out {
		if !out[i].OpCode.Class().IsJump() {
			continue
		}
		ref, changed := out[i].Reference(), false
		for next, ok := alias[ref]; ok; next, ok = alias[ref] {
			ref, changed = next, true
		}
		if changed {
			out[i] = out[i].WithReference(ref)
		}
	}
	return preloadCtx(dropUnusedCtx(dropDeadStores(dropRedundant(jumpThreading(out))))), nil
}

// ctxPrologue says whether insns start with New's `r6 = r1` (unlabeled).
func ctxPrologue(insns asm.Instructions) bool {
	return len(insns) > 0 && insns[0].Symbol() == "" && insns[0].OpCode == asm.Mov.Op(asm.RegSource) && insns[0].Dst == CtxReg && insns[0].Src == asm.R1
}

// dropUnusedCtx removes the prologue `r6 = r1` of a program that never
// reads ctx.
func dropUnusedCtx(insns asm.Instructions) asm.Instructions {
	if !ctxPrologue(insns) {
		return insns
	}
	for _, ins := range insns[1:] {
		if ins.Src == CtxReg || ins.Dst == CtxReg {
			return insns
		}
	}
	return insns[1:]
}

// jumpThreading turns `if (!c) goto A; goto B; A: ...` into `if (c) goto
// B; A: ...`: what `If(c, Exit)` emits becomes one jump.
func jumpThreading(insns asm.Instructions) asm.Instructions {
	out := insns[:0:0]
	for i := 0; i < len(insns); i++ {
		ins := insns[i]
		if class := ins.OpCode.Class(); i+2 < len(insns) && (class == asm.JumpClass || class == asm.Jump32Class) {
			inv, ok := inverseJump[ins.OpCode.JumpOp()]
			next, after := insns[i+1], insns[i+2]
			if ok && next.OpCode.JumpOp() == asm.Ja && next.OpCode.Class() == asm.JumpClass &&
				next.Symbol() == "" && after.Symbol() == ins.Reference() {
				ins.OpCode = ins.OpCode.SetJumpOp(inv)
				out = append(out, ins.WithReference(next.Reference()))
				i++
				continue
			}
		}
		out = append(out, ins)
	}
	return out
}

// Spec finishes the program and resolves its member paths and argument slots
// against target: a kernel module's function, and the types the program
// reads through its arguments, in the module's BTF.
//
// A multi-link program is relocated for every function of its list: the
// list it was loaded for, or its Targets resolved against target's BTF.
func (p *Program) Spec(target Target) (*ebpf.ProgramSpec, error) {
	insns, err := p.Instructions()
	if err != nil {
		return nil, err
	}
	if p.from != "" {
		retargetRelocations(insns, p.from, p.info.Target)
	}
	var fns []string
	var known map[relocation]*fbtf.Func
	scope := target.modules().Vmlinux()
	if p.multiLink() {
		if fns = p.multi.fns; fns == nil {
			if fns, _, err = ResolveTargets(target, p.info); err != nil {
				return nil, err
			}
		}
	} else {
		f, fscope, err := target.locate(p.info)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", p.info.Name, err)
		}
		scope = fscope
		known = map[relocation]*fbtf.Func{{fn: p.info.Target, tp: p.info.Kind.Tracepoint()}: f}
	}
	insns, err = relocate(insns, target, scope, known, fns)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", p.info.Name, err)
	}
	return p.info.ProgramSpec(insns), nil
}

// String lists the program's instructions, for debugging.
func (p *Program) String() string {
	insns, err := p.Instructions()
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s):\n%v", p.info.Name, p.info.SectionName(), insns)
	return b.String()
}

// Probe is a program as a stub builds it: conditions, filters, exits and
// return values; values, maps and events take it (or the generated context
// that embeds it) as their [Ctx].
type Probe struct{ p *Program }

// Ctx is what kernel-side operations build into: a generated context type
// (which embeds *Probe), a *Probe, or a *Program.
type Ctx interface {
	program() *Program
}

func (pr *Probe) program() *Program { return pr.p }

// Program is the low-level builder behind the probe, for what stubs cannot
// otherwise say.
func (pr *Probe) Program() *Program { return pr.p }

// Info returns what the program attaches to.
func (pr *Probe) Info() Info { return pr.p.info }

// If runs then when c holds: `if (c) { then }`.
func (pr *Probe) If(c Cond, then func()) { pr.p.If(c, then) }

// IfElse is `if (c) { then } else { els }`.
func (pr *Probe) IfElse(c Cond, then, els func()) { pr.p.IfElse(c, then, els) }

// Exit ends the program here with `return 0`.
func (pr *Probe) Exit() { pr.p.Exit() }

// Return ends an fmod_ret program here: 0 lets the traced function run,
// -errno (-4095 to -1) skips it and makes -errno its result.
func (pr *Probe) Return(v int32) { pr.p.Return(v) }

// FilterTgid skips the rest unless the current process id is tgid.
func (pr *Probe) FilterTgid(tgid uint32) { pr.p.FilterTgid(tgid) }

// FilterTid skips the rest unless the current thread id is tid.
func (pr *Probe) FilterTid(tid uint32) { pr.p.FilterTid(tid) }

// FilterComm skips the rest unless the current task's comm is comm.
func (pr *Probe) FilterComm(comm string) { pr.p.FilterComm(comm) }
