package runtime

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf/asm"
	cbtf "github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// Target is the kernel a program is built for: its BTF and a name for
// messages ("Linux 6.12.117+deb12-cloud-amd64", "snapshot.btf").
type Target struct {
	Spec *cbtf.Spec
	Name string
	// Modules has the BTF of the kernel's modules, built on Spec, for
	// programs on their functions; nil: those a snapshot Spec keeps.
	// [KernelTarget]'s reads the running kernel's /sys/kernel/btf.
	Modules *fbtf.Modules
}

// kernelBTF is the running kernel's BTF, decoded once per process and
// shared by every load (cilium/ebpf would otherwise decode the megabytes of
// vmlinux BTF again for each collection).
var kernelBTF = cbtf.NewCache()

var kernelTarget = sync.OnceValues(func() (Target, error) {
	spec, err := kernelBTF.Kernel()
	if err != nil {
		return Target{}, fmt.Errorf("load the running kernel's BTF: %w", err)
	}
	return Target{Spec: spec, Name: "Linux " + KernelRelease(), Modules: fbtf.NewModules(spec, runningModules{})}, nil
})

// KernelTarget is the running kernel, its BTF loaded once per process.
func KernelTarget() (Target, error) { return kernelTarget() }

// KernelRelease is uname -r.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return string(bytes.TrimRight(u.Release[:], "\x00"))
}

type relocKey struct{}

// role says which part of an instruction a relocation patches.
type role int

const (
	roleArgSlot     role = iota // ldx offset = 8 * slot of argument
	roleRetSlot                 // ldx offset = 8 * nr_slots
	roleMember                  // ldx through a BTF pointer: the load (and shifts) of the member
	roleStackMember             // ldx from the stack copy of an untyped read: likewise
	roleReadSize                // mov imm = bytes an untyped read copies
	roleFieldAddr               // add imm = member offset
	roleCheckField              // no patch: the member must exist
	roleKfunc                   // call imm = BTF id of kfunc fn taking word parameters
)

// relocation is what an instruction carries instead of a byte offset.
type relocation struct {
	role role
	// fn and arg name an argument (or fn alone the return value); tp says
	// fn is a tracepoint.
	fn, arg string
	tp      bool
	// typ and path name a member of a struct or union.
	typ, path string
	// size is the value's size in bytes when the code was generated; the
	// target must agree (0: do not check). signed says how a bitfield is
	// extended.
	size   int
	signed bool
	// word is the slot within a two-slot by-value argument.
	word int
	// multi marks an argument or return value of a multi-link program:
	// the slot is the imm of bpf_get_func_arg's slot argument, and one
	// slot for every function of the list.
	multi bool
}

func (r *relocation) String() string {
	if r.role == roleKfunc {
		return "kfunc " + r.fn
	}
	if r.typ != "" {
		return fmt.Sprintf("%s.%s", r.typ, r.path)
	}
	if r.arg != "" && r.tp {
		return fmt.Sprintf("argument %s of tracepoint %s", r.arg, r.fn)
	}
	if r.arg != "" {
		return fmt.Sprintf("argument %s of %s", r.arg, r.fn)
	}
	return fmt.Sprintf("return value of %s", r.fn)
}

func withReloc(ins asm.Instruction, r *relocation) asm.Instruction {
	ins.Metadata.Set(relocKey{}, r)
	return ins
}

func relocOf(ins *asm.Instruction) *relocation {
	r, _ := ins.Metadata.Get(relocKey{}).(*relocation)
	return r
}

// retargetRelocations makes insns' argument and return-value relocations
// of function from name function to instead: a program retargeted to
// another function reads that function's slots.
func retargetRelocations(insns asm.Instructions, from, to string) {
	for i := range insns {
		if r := relocOf(&insns[i]); r != nil && !r.tp && r.fn == from && (r.role == roleArgSlot || r.role == roleRetSlot) {
			moved := *r
			moved.fn = to
			insns[i].Metadata.Set(relocKey{}, &moved)
		}
	}
}

// resolvedKey marks the first instruction a relocation became.
type resolvedKey struct{}

// Relocations lists the paths insns carry, one line each, for debugging and
// tests ("3: argument sk of tcp_v4_connect").
func Relocations(insns asm.Instructions) []string {
	var out []string
	for i := range insns {
		if r := relocOf(&insns[i]); r != nil {
			out = append(out, fmt.Sprintf("%d: %s", i, r))
		}
	}
	return out
}

// Resolved lists, after [Relocate], where each path was resolved: the first
// instruction it became ("3: argument sk of tcp_v4_connect").
func Resolved(insns asm.Instructions) []string {
	var out []string
	for i := range insns {
		if what, ok := insns[i].Metadata.Get(resolvedKey{}).(string); ok {
			out = append(out, fmt.Sprintf("%d: %s", i, what))
		}
	}
	return out
}

// Relocate returns a copy of insns with every member path and argument name
// resolved against target's vmlinux BTF: offsets, slots, and the loads of
// members, which become a load and two shifts where the target's member is
// a bitfield. An argument or member the target lacks, or whose size
// changed, is an error naming it and the target. ([Program.Spec] resolves
// a module's function and types in the module's BTF.)
func Relocate(insns asm.Instructions, target Target) (asm.Instructions, error) {
	return relocate(insns, target, target.modules().Vmlinux(), nil, nil)
}

// relocate is Relocate with types looked up in scope; known are
// functions already resolved, by name. A multi-link program is relocated
// for fns: its arguments must sit in one slot, with one size, in every
// function.
func relocate(insns asm.Instructions, target Target, scope fbtf.Types, known map[relocation]*fbtf.Func, fns []string) (asm.Instructions, error) {
	out := make(asm.Instructions, 0, len(insns))
	funcs := map[relocation]*fbtf.Func{}
	for k, f := range known {
		funcs[k] = f
	}
	members := map[[2]string]*fbtf.Member{}
	fn := func(r *relocation) (*fbtf.Func, error) {
		key := relocation{fn: r.fn, tp: r.tp}
		if f, ok := funcs[key]; ok {
			return f, nil
		}
		var f *fbtf.Func
		var err error
		if r.tp {
			f, err = fbtf.ResolveTracepoint(target.Spec, r.fn)
		} else {
			f, err = fbtf.ResolveFunc(scope, r.fn)
		}
		if err != nil {
			return nil, fmt.Errorf("on %s: %w", target.Name, err)
		}
		funcs[key] = f
		return f, nil
	}
	member := func(r *relocation) (*fbtf.Member, error) {
		key := [2]string{r.typ, r.path}
		if m, ok := members[key]; ok {
			return m, nil
		}
		m, err := fbtf.ResolveMember(scope, r.typ, r.path)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", r, target.Name, err)
		}
		if len(m.Hops) != 1 {
			return nil, fmt.Errorf("%s on %s: path crosses a pointer; load each hop separately", r, target.Name)
		}
		members[key] = m
		return m, nil
	}
	for i := range insns {
		ins := insns[i]
		r := relocOf(&ins)
		if r == nil {
			out = append(out, ins)
			continue
		}
		ins.Metadata.Set(relocKey{}, nil)
		ins.Metadata.Set(resolvedKey{}, r.String())
		switch r.role {
		case roleArgSlot, roleRetSlot:
			if r.multi {
				slot, err := multiSlot(r, fns, fn)
				if err != nil {
					return nil, err
				}
				if r.role == roleArgSlot {
					ins.Constant = int64(slot)
				}
				out = append(out, ins)
				continue
			}
			f, err := fn(r)
			if err != nil {
				return nil, err
			}
			v := f.Return
			if r.role == roleArgSlot {
				if v, err = f.Arg(r.arg); err != nil {
					return nil, fmt.Errorf("on %s: %w", target.Name, err)
				}
			}
			if r.size != 0 && v.Size != r.size {
				return nil, fmt.Errorf("%s is %d bytes on %s, %d when generated", r, v.Size, target.Name, r.size)
			}
			if r.word >= v.Slots && r.word > 0 {
				return nil, fmt.Errorf("%s takes %d slot(s) on %s: no word %d", r, v.Slots, target.Name, r.word)
			}
			ins.Offset = int16(8 * (v.Slot + r.word))
			out = append(out, ins)
		case roleKfunc:
			id, err := fbtf.Kfunc(target.Spec, r.fn, r.word)
			if err != nil {
				return nil, fmt.Errorf("on %s: %w", target.Name, err)
			}
			ins.Constant = int64(id)
			out = append(out, ins)
		default:
			m, err := member(r)
			if err != nil {
				return nil, err
			}
			patched, err := patchMember(ins, r, m, target)
			if err != nil {
				return nil, err
			}
			out = append(out, patched...)
		}
	}
	return out, nil
}

// multiSlot is the slot of r's argument (or return value) in every
// function of fns, which must agree on it and on its size.
func multiSlot(r *relocation, fns []string, fn func(*relocation) (*fbtf.Func, error)) (int, error) {
	if len(fns) == 0 {
		return 0, fmt.Errorf("%s: a multi-function program relocated without its functions", r.multiString())
	}
	bySlot := map[int][]string{}
	for _, name := range fns {
		f, err := fn(&relocation{fn: name})
		if err != nil {
			return 0, err
		}
		v := f.Return
		if r.role == roleArgSlot {
			if v, err = f.Arg(r.arg); err != nil {
				return 0, fmt.Errorf("%w: a multi-function probe reads only arguments every function has", err)
			}
		}
		if r.size != 0 && v.Size != r.size {
			return 0, fmt.Errorf("%s is %d bytes in %s, %d when generated", r.multiString(), v.Size, name, r.size)
		}
		if r.word >= v.Slots && r.word > 0 {
			return 0, fmt.Errorf("%s takes %d slot(s) in %s: no word %d", r.multiString(), v.Slots, name, r.word)
		}
		bySlot[v.Slot+r.word] = append(bySlot[v.Slot+r.word], name)
	}
	if len(bySlot) == 1 {
		for slot := range bySlot {
			return slot, nil
		}
	}
	// Name the functions of the rarest slot: the odd ones out.
	slots := slices.Sorted(maps.Keys(bySlot))
	slices.SortStableFunc(slots, func(a, b int) int { return len(bySlot[a]) - len(bySlot[b]) })
	odd, common := slots[0], slots[len(slots)-1]
	return 0, fmt.Errorf("%s is in slot %d of %s but in slot %d of %s: one program reads one slot for all its functions (leave %s out, or read the argument in a probe of its own)",
		r.multiString(), odd, strings.Join(bySlot[odd], ", "), common, strings.Join(bySlot[common], ", "), strings.Join(bySlot[odd], ", "))
}

func (r *relocation) multiString() string {
	if r.role == roleRetSlot {
		return "the return value"
	}
	return "argument " + r.arg
}

// patchMember resolves one member relocation: an instruction, or for
// member loads the load and shifts the target's layout needs (the first
// keeps the original's label).
func patchMember(ins asm.Instruction, r *relocation, m *fbtf.Member, target Target) (asm.Instructions, error) {
	last := m.Last()
	if last.Offset > math.MaxInt16 {
		return nil, fmt.Errorf("%s on %s: offset %d too large for one load", r, target.Name, last.Offset)
	}
	size, err := cbtf.Sizeof(last.Type)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", r, target.Name, err)
	}
	if r.size != 0 && r.role != roleFieldAddr && r.role != roleCheckField && size != r.size {
		return nil, fmt.Errorf("%s is %d bytes on %s, %d when generated", r, size, target.Name, r.size)
	}
	load := size
	if m.IsBitfield() {
		load = BitfieldLoad(m.BitOffset, m.BitSize)
	}
	switch r.role {
	case roleFieldAddr:
		ins.Constant = int64(last.Offset)
		return asm.Instructions{ins}, nil
	case roleReadSize:
		ins.Constant = int64(load)
		return asm.Instructions{ins}, nil
	case roleCheckField:
		return asm.Instructions{ins}, nil
	}
	// roleMember loads at the member's offset from the pointer; the stack
	// copy of an untyped read holds the member's bytes at its start.
	off := ins.Offset
	if r.role == roleMember {
		off = int16(last.Offset)
	}
	if !m.IsBitfield() {
		sz, err := SizeOf(size)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", r, target.Name, err)
		}
		ins.OpCode = asm.LoadMemOp(sz)
		ins.Offset = off
		return asm.Instructions{ins}, nil
	}
	shifts, err := ReadBitfield(ins.Dst, ins.Src, off, load, m.BitOffset, m.BitSize, r.signed)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", r, target.Name, err)
	}
	if sym := ins.Symbol(); sym != "" {
		shifts[0] = shifts[0].WithSymbol(sym)
	}
	shifts[0].Metadata.Set(resolvedKey{}, r.String())
	return shifts, nil
}
