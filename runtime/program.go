package runtime

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// exitLabel marks the program's epilogue; filters jump there.
const exitLabel = "exit"

// Program builds one fentry, fexit or fmod_ret program. Its prologue keeps
// ctx in r6 ([CtxReg]); values load themselves into a register when used;
// labels are unique and deterministic; the first error is kept and reported
// by [Program.Instructions] and [Program.Spec], so building code need not
// check each call.
type Program struct {
	info    Info
	insns   asm.Instructions
	maps    map[string]*ebpf.MapSpec
	labels  map[string]int
	pending string
	alias   map[string]string
	stack   int
	err     error
}

// New starts a program: `r6 = r1` (ctx survives helper calls there).
func New(info Info) *Program {
	p := &Program{info: info, maps: map[string]*ebpf.MapSpec{}, labels: map[string]int{}, alias: map[string]string{}}
	if info.Kind != Fentry && info.Kind != Fexit && info.Kind != FmodRet {
		p.fail(fmt.Errorf("program %s: unknown kind %v", info.Name, info.Kind))
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

// Emit appends instructions; a pending label lands on the first.
func (p *Program) Emit(insns ...asm.Instruction) {
	for _, ins := range insns {
		if p.pending != "" {
			ins = ins.WithSymbol(p.pending)
			p.pending = ""
		}
		p.insns = append(p.insns, ins)
	}
}

func (p *Program) emitAll(insns asm.Instructions) { p.Emit(insns...) }

// Label returns a new label name: prefix_N, N counting per prefix from 0, so
// the same building code always yields the same names.
func (p *Program) Label(prefix string) string {
	n := p.labels[prefix]
	p.labels[prefix] = n + 1
	return fmt.Sprintf("%s_%d", prefix, n)
}

// Mark places label on the next instruction emitted.
func (p *Program) Mark(label string) {
	if p.pending != "" {
		p.alias[label] = p.pending
		return
	}
	p.pending = label
}

// Alloc reserves size bytes of stack, 8-aligned, and returns their offset
// from r10 (negative).
func (p *Program) Alloc(size int) int16 {
	p.stack += (size + 7) &^ 7
	if p.stack > StackLimit {
		p.fail(fmt.Errorf("stack use of %d bytes exceeds %d", p.stack, StackLimit))
		return -StackLimit
	}
	return int16(-p.stack)
}

// Ringbuf declares a ring buffer map of size bytes (a power of two and a
// multiple of the page size) that events are written to. Programs that
// declare the same name share one map when loaded together.
func (p *Program) Ringbuf(name string, size uint32) {
	if size == 0 || size&(size-1) != 0 {
		p.fail(fmt.Errorf("ring buffer %s: size %d is not a power of two", name, size))
		return
	}
	p.maps[name] = &ebpf.MapSpec{Name: name, Type: ebpf.RingBuf, MaxEntries: size}
}

// Maps returns the maps the program declared.
func (p *Program) Maps() map[string]*ebpf.MapSpec { return p.maps }

// Load emits code that leaves v in dst, widened to 64 bits. dst must be
// r0-r5 or r7-r9: r6 holds ctx and r10 is read-only.
func (p *Program) Load(dst asm.Register, value Value) {
	v := value.AsScalar()
	if dst == CtxReg || dst == asm.RFP {
		p.fail(fmt.Errorf("load into %s: r6 holds ctx and r10 is read-only", dst))
		return
	}
	if v.src == nil {
		p.fail(errors.New("load of a zero Scalar"))
		return
	}
	v.src.load(p, dst)
}

// If emits `if (v op imm) { then }`. then may emit anything, including
// [Program.Return] and nested Ifs.
func (p *Program) If(v Value, op asm.JumpOp, imm int32, then func()) {
	inverse, ok := inverseJump[op]
	if !ok {
		p.fail(fmt.Errorf("if: unsupported comparison %v", op))
		return
	}
	end := p.Label("endif")
	p.Load(asm.R1, v)
	p.Emit(inverse.Imm(asm.R1, imm, end))
	then()
	p.Mark(end)
}

var inverseJump = map[asm.JumpOp]asm.JumpOp{
	asm.JEq: asm.JNE, asm.JNE: asm.JEq,
	asm.JGT: asm.JLE, asm.JLE: asm.JGT, asm.JGE: asm.JLT, asm.JLT: asm.JGE,
	asm.JSGT: asm.JSLE, asm.JSLE: asm.JSGT, asm.JSGE: asm.JSLT, asm.JSLT: asm.JSGE,
}

// Return emits `return v` here. Only fmod_ret programs may return non-zero:
// that value replaces the traced function's result and skips the function.
func (p *Program) Return(v int32) {
	if v != 0 && p.info.Kind != FmodRet {
		p.fail(fmt.Errorf("%s programs must return 0, not %d", p.info.Kind, v))
		return
	}
	p.emitAll(Return(v))
}

// FilterTgid skips the rest of the program unless the current process
// (thread group) id is tgid.
func (p *Program) FilterTgid(tgid uint32) { p.emitAll(FilterTgid(tgid, exitLabel)) }

// FilterComm skips the rest of the program unless the current task's comm is
// exactly comm (all 16 bytes compared).
func (p *Program) FilterComm(comm string) {
	insns, err := FilterComm(comm, p.Alloc(CommLen), exitLabel)
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
	epilogue := Return(0)
	epilogue[0] = epilogue[0].WithSymbol(exitLabel)
	out = append(out, epilogue...)
	// Labels that fell on one spot point at the one placed there; one still
	// pending at the end falls on the epilogue.
	alias := make(map[string]string, len(p.alias)+1)
	for k, v := range p.alias {
		alias[k] = v
	}
	if p.pending != "" {
		alias[p.pending] = exitLabel
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
	return out, nil
}

// Spec finishes the program and resolves its member paths and argument slots
// against target.
func (p *Program) Spec(target Target) (*ebpf.ProgramSpec, error) {
	insns, err := p.Instructions()
	if err != nil {
		return nil, err
	}
	insns, err = Relocate(insns, target)
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
