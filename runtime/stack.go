package runtime

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// StackDepth is how many return addresses a [StackTrace] keeps per stack:
// PERF_MAX_STACK_DEPTH, the kernel's default kernel.perf_event_max_stack
// (a stack map's values may not be larger).
const StackDepth = 127

// DefaultStackEntries is how many stacks a [StackTrace] holds when its
// declaration does not say.
const DefaultStackEntries = 10240

// Flags of [StackTrace.ID], as bpf_get_stackid takes them (BPF_F_*).
const (
	// StackSkipMask holds the number of innermost frames to leave out
	// (0 to 255): the program's own frames and the trampoline's.
	StackSkipMask uint64 = 0xff
	// StackUser records the user-space stack instead of the kernel's.
	StackUser uint64 = 1 << 8
	// StackFastCmp compares stacks by hash only when filing them.
	StackFastCmp uint64 = 1 << 9
	// StackReuseID lets a new stack replace one whose hash collides,
	// instead of failing with -EEXIST.
	StackReuseID uint64 = 1 << 10
)

// StackTrace is a map of stack traces keyed by the ids [StackTrace.ID]
// gives: `BPF_MAP_TYPE_STACK_TRACE`, each value [StackDepth] u64 return
// addresses, innermost first, zero after the last. Declare it at package
// level with //fentrygen:map [max=N]; user space reads it with
// [OpenStackMap].
type StackTrace struct{ mapDecl }

// Declare names the map and sizes it; generated code calls it.
func (m *StackTrace) Declare(name string, opts MapOptions) {
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultStackEntries
	}
	m.declare(name, ebpf.StackTrace, 4, 8*StackDepth, opts)
}

// ID files the current stack in m and is its id: `bpf_get_stackid(ctx,
// &m, flags)`, a negative errno when it could not (-EEXIST: another stack
// holds the bucket and flags lack [StackReuseID]; -EFAULT: no stack).
// flags are the number of frames to skip (at most [StackSkipMask]) ORed
// with [StackUser], [StackFastCmp] and [StackReuseID]. Like every value
// it is computed where it is used: pin it with [Let] to use it twice.
func (m *StackTrace) ID(c Ctx, flags uint64) S64 {
	p := c.program()
	if flags&^(StackSkipMask|StackUser|StackFastCmp|StackReuseID) != 0 {
		p.fail(fmt.Errorf("stack map %s: unknown flags %#x", m.name, flags))
	}
	m.use(p)
	return numOf[int64](genFunc{
		f: func(p *Program, dst asm.Register, _ regs) {
			if !m.use(p) {
				return
			}
			p.Emit(
				asm.Mov.Reg(asm.R1, CtxReg),
				asm.LoadMapPtr(asm.R2, 0).WithReference(m.name),
				asm.Mov.Imm(asm.R3, int32(flags)),
				asm.FnGetStackid.Call(),
			)
			if dst != asm.R0 {
				p.Emit(asm.Mov.Reg(dst, asm.R0))
			}
		},
		helper: true,
		upper:  extBoth,
	})
}

// StackMap is the user-space side of a loaded [StackTrace].
type StackMap struct {
	m    *ebpf.Map
	name string
}

// OpenStackMap is the handle on objs' copy of the stack map decl.
func OpenStackMap(objs *Objects, decl *StackTrace) (*StackMap, error) {
	m, err := objs.Map(decl.name)
	if err != nil {
		return nil, err
	}
	return &StackMap{m: m, name: decl.name}, nil
}

// Ebpf is the underlying map.
func (s *StackMap) Ebpf() *ebpf.Map { return s.m }

// Stack returns the return addresses filed under id, innermost first, up
// to the first zero; ok is false when there is no such stack.
func (s *StackMap) Stack(id uint32) (pcs []uint64, ok bool, err error) {
	raw := make([]uint64, s.m.ValueSize()/8)
	if err := s.m.Lookup(id, &raw); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("stack map %s: %w", s.name, err)
	}
	for i, pc := range raw {
		if pc == 0 {
			return raw[:i], true, nil
		}
	}
	return raw, true, nil
}

// Delete forgets stack id; a missing id is not an error.
func (s *StackMap) Delete(id uint32) error {
	if err := s.m.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("stack map %s: %w", s.name, err)
	}
	return nil
}
