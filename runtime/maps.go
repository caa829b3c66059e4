package runtime

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Elem is what maps hold as keys and values: a [Num] (U32, U64, ...) or a
// generated view (XView) of one of your structs.
type Elem interface{ elem }

// MapOptions tune a map declaration. Generated code fills them from the
// //fentrygen:map annotation.
type MapOptions struct {
	// MaxEntries is the map's capacity (hash maps) or length (arrays).
	MaxEntries uint32
	// Flags are BPF_F_* map flags.
	Flags uint32
}

// mapDecl is a map declared at package level: its name in the package's
// collection and its spec, set by the generated code's Declare call.
type mapDecl struct {
	name string
	spec *ebpf.MapSpec
}

func (d *mapDecl) use(p *Program) bool {
	if d.spec == nil {
		p.fail(fmt.Errorf("a map used before it was declared: is the generated file up to date (go generate)?"))
		return false
	}
	p.useMap(d.name, d.spec)
	return true
}

func (d *mapDecl) declare(name string, typ ebpf.MapType, key, value int, opts MapOptions) {
	d.name = name
	d.spec = &ebpf.MapSpec{Name: KernelName(name), Type: typ, KeySize: uint32(key), ValueSize: uint32(value), MaxEntries: opts.MaxEntries, Flags: opts.Flags}
}

// Name is the map's name in its package's collection.
func (d *mapDecl) Name() string { return d.name }

// Spec is the map's spec (nil before Declare).
func (d *mapDecl) Spec() *ebpf.MapSpec { return d.spec }

// Map update flags.
const (
	updateAny     = 0 // BPF_ANY
	updateNoExist = 1 // BPF_NOEXIST
)

// keyMem puts key in memory for a helper.
func keyMem[K elem](p *Program, key K) (mem, func()) {
	return any(key).(memoryOf).memory(p)
}

// callLookup emits `r0 = bpf_map_lookup_elem(&map, &key)`.
func (d *mapDecl) callLookup(p *Program, key mem) {
	key.addr(p, asm.R2, 0)
	p.Emit(asm.LoadMapPtr(asm.R1, 0).WithReference(d.name), asm.FnMapLookupElem.Call())
}

// callUpdate emits `r0 = bpf_map_update_elem(&map, &key, &value, flags)`.
func (d *mapDecl) callUpdate(p *Program, key, value mem, flags int32) {
	key.addr(p, asm.R2, 0)
	value.addr(p, asm.R3, 0)
	p.Emit(asm.LoadMapPtr(asm.R1, 0).WithReference(d.name), asm.Mov.Imm(asm.R4, flags), asm.FnMapUpdateElem.Call())
}

// withValue runs found with the map value r0 points to, unless r0 is
// NULL; the pointer waits on the stack while found runs.
func withValue[V elem](p *Program, d *mapDecl, what string, size int, found func(V)) {
	end := p.Label("found")
	p.Emit(asm.JEq.Imm(asm.R0, 0, end))
	sc := &scope{what: fmt.Sprintf("%s of map %s", what, d.name)}
	// The pointer waits in a callee-saved register (helpers keep it), or,
	// when found nests deeper than there are registers, in a stack slot.
	v := mem{size: size, scope: sc}
	spill := len(p.insns)
	if r, ok := p.holdReg(); ok {
		defer p.releaseReg(r)
		v.inReg, v.reg = true, r
		p.Emit(asm.Mov.Reg(r, asm.R0))
	} else {
		v.ptr = p.tempSlot()
		defer p.freeSlot(v.ptr)
		p.Emit(asm.StoreMem(asm.RFP, v.ptr, asm.R0, asm.DWord))
	}
	if len(p.insns) == spill {
		spill = -1 // dead code: nothing emitted
	}
	found(bound[V](p, v))
	sc.closed = true
	switch {
	case spill < 0:
	case !sc.used:
		p.unemit(spill)
	case v.inReg && swappable(p.insns[spill+1:]):
		// No helper call in found: the pointer may stay in r0, and what
		// found kept in r0 goes to the register instead.
		for i := spill + 1; i < len(p.insns); i++ {
			swapRegs(&p.insns[i], asm.R0, v.reg)
		}
		p.unemit(spill)
	}
	p.Mark(end)
}

// swappable says whether r0 plays no part of its own in insns: no call
// (its result), exit (the return value) or atomic that reads or writes r0
// by itself (cmpxchg) or writes its source (the fetching forms).
func swappable(insns asm.Instructions) bool {
	for _, ins := range insns {
		op := ins.OpCode
		if op.Class().IsJump() && (op.JumpOp() == asm.Call || op.JumpOp() == asm.Exit) {
			return false
		}
		if op.Class() == asm.StXClass && op.Mode() == asm.AtomicMode {
			switch op.AtomicOp() {
			case asm.AddAtomic, asm.AndAtomic, asm.OrAtomic, asm.XorAtomic:
			default:
				return false
			}
		}
	}
	return true
}

// swapRegs exchanges registers a and b in ins's operands.
func swapRegs(ins *asm.Instruction, a, b asm.Register) {
	swap := func(r asm.Register) asm.Register {
		switch r {
		case a:
			return b
		case b:
			return a
		}
		return r
	}
	ins.Dst = swap(ins.Dst)
	if usesSrc(ins.OpCode) {
		ins.Src = swap(ins.Src)
	}
}

// usesSrc says whether an instruction's Src field names a register: not
// for immediates (ALU, jumps, stores of one), where it must stay 0, nor
// for 64-bit loads, where it is a pseudo-source.
func usesSrc(op asm.OpCode) bool {
	switch cls := op.Class(); {
	case cls == asm.LdXClass || cls == asm.StXClass:
		return true
	case cls.IsALU() || cls.IsJump():
		return op.Source() == asm.RegSource
	}
	return false
}

// kv is the kernel side shared by the hash and array kinds.
type kv[K, V Elem] struct{ mapDecl }

func (m *kv[K, V]) decl(name string, typ ebpf.MapType, opts MapOptions) {
	var k K
	var v V
	m.declare(name, typ, k.elemSize(), v.elemSize(), opts)
}

// Lookup runs found with the value stored under key, if there is one:
// `if ((v = bpf_map_lookup_elem(&m, &key))) found(v)`. The value is the
// map's memory: reads see it, writes and atomic adds change it, until found
// returns.
func (m *kv[K, V]) Lookup(c Ctx, key K, found func(v V)) {
	p := c.program()
	if !m.use(p) {
		return
	}
	km, release := keyMem(p, key)
	m.callLookup(p, km)
	release()
	var v V
	withValue(p, &m.mapDecl, "Lookup", v.elemSize(), found)
}

// Update stores v under key: `bpf_map_update_elem(&m, &key, &v, BPF_ANY)`.
func (m *kv[K, V]) Update(c Ctx, key K, v V) { m.update(c, key, v, updateAny) }

func (m *kv[K, V]) update(c Ctx, key K, v V, flags int32) {
	p := c.program()
	if !m.use(p) {
		return
	}
	km, releaseKey := keyMem(p, key)
	vm, releaseValue := any(v).(memoryOf).memory(p)
	m.callUpdate(p, km, vm, flags)
	releaseValue()
	releaseKey()
}

// LookupOrInit runs found with the value under key, storing a zero value
// there first when there is none (BPF_NOEXIST, so a racing insert wins).
func (m *kv[K, V]) LookupOrInit(c Ctx, key K, found func(v V)) {
	p := c.program()
	if !m.use(p) {
		return
	}
	var v V
	size := v.elemSize()
	km, release := keyMem(p, key)
	defer release()
	m.lookupOrInsert(p, km, size)
	withValue(p, &m.mapDecl, "LookupOrInit", size, found)
}

// lookupOrInsert leaves in r0 the value under key, inserting zeroes first
// when there is none (NULL only if the map is full).
func (d *mapDecl) lookupOrInsert(p *Program, key mem, size int) {
	have := p.Label("have")
	d.callLookup(p, key)
	p.Emit(asm.JNE.Imm(asm.R0, 0, have))
	if size <= maxStackZero {
		d.callUpdate(p, key, stackMem(p, size), updateNoExist)
	} else {
		// A large zero value comes from a one-element array of zeroes,
		// not from the 512-byte stack.
		zero := d.name + ".zero"
		p.useMap(zero, &ebpf.MapSpec{Name: KernelName(d.name + "_zero"), Type: ebpf.Array, KeySize: 4, ValueSize: uint32(size), MaxEntries: 1})
		done := p.Label("zero")
		zkey := mem{stack: p.tempSlot(), size: 4}
		p.Emit(asm.StoreImm(asm.RFP, zkey.stack, 0, asm.Word))
		(&mapDecl{name: zero}).callLookup(p, zkey)
		p.freeSlot(zkey.stack)
		p.Emit(asm.JEq.Imm(asm.R0, 0, done))
		key.addr(p, asm.R2, 0)
		p.Emit(
			asm.Mov.Reg(asm.R3, asm.R0),
			asm.LoadMapPtr(asm.R1, 0).WithReference(d.name),
			asm.Mov.Imm(asm.R4, updateNoExist),
			asm.FnMapUpdateElem.Call(),
		)
		p.Mark(done)
	}
	d.callLookup(p, key)
	p.Mark(have)
}

// maxStackZero is the largest zero value built on the stack for an insert.
const maxStackZero = 64

// Add adds delta to the integer value under key atomically, storing delta
// there when there is none: the counter idiom. V must be a 4- or 8-byte
// Num.
func (m *kv[K, V]) Add(c Ctx, key K, delta V) {
	p := c.program()
	if !m.use(p) {
		return
	}
	d, ok := any(delta).(Value)
	if !ok {
		p.fail(fmt.Errorf("map %s: Add needs integer values; use Lookup or LookupOrInit and the view's Add methods", m.name))
		return
	}
	s := d.scalar()
	if s.e == nil {
		p.fail(fmt.Errorf("map %s: Add of a zero value", m.name))
		return
	}
	// delta once, into the stack: it may call helpers.
	dm := mem{stack: p.Alloc(8), size: s.size}
	dm.store(p, 0, s)
	km, release := keyMem(p, key)
	defer release()
	if m.spec.Type == ebpf.Array || m.spec.Type == ebpf.PerCPUArray {
		m.callLookup(p, km)
	} else {
		inserted, have := p.Label("inserted"), p.Label("have")
		m.callLookup(p, km)
		p.Emit(asm.JNE.Imm(asm.R0, 0, have))
		m.callUpdate(p, km, dm, updateNoExist)
		p.Emit(asm.JEq.Imm(asm.R0, 0, inserted))
		m.callLookup(p, km)
		p.Mark(have)
		defer p.Mark(inserted)
	}
	done := p.Label("add")
	p.Emit(asm.JEq.Imm(asm.R0, 0, done))
	sz, _ := SizeOf(s.size)
	if s.size != 4 && s.size != 8 {
		p.fail(fmt.Errorf("map %s: atomic add of a %d-byte value: BPF adds 4 or 8 bytes atomically", m.name, s.size))
		return
	}
	p.Emit(asm.LoadMem(asm.R1, asm.RFP, dm.stack, sz), asm.AddAtomic.Mem(asm.R0, asm.R1, sz, 0))
	p.Mark(done)
}

// Hash is a hash map from K to V: `BPF_MAP_TYPE_HASH`. Declare it at package
// level with //fentrygen:map [max=N]; several probes share it.
type Hash[K, V Elem] struct{ kv[K, V] }

// Declare names the map and sizes it; generated code calls it.
func (m *Hash[K, V]) Declare(name string, opts MapOptions) { m.decl(name, ebpf.Hash, opts) }

// Delete removes key: `bpf_map_delete_elem(&m, &key)`.
func (m *Hash[K, V]) Delete(c Ctx, key K) { m.delete(c, key) }

// Insert stores v under key unless the key is present (BPF_NOEXIST).
func (m *Hash[K, V]) Insert(c Ctx, key K, v V) { m.update(c, key, v, updateNoExist) }

// Take deletes the entry under key, if any, and runs found with a copy of
// its value: the entry-to-exit stash idiom (store at fentry, take at
// fexit). found may end the program early: the entry is gone already.
func (m *Hash[K, V]) Take(c Ctx, key K, found func(v V)) { m.take(c, key, found) }

// LRUHash is a hash map that evicts its least recently used entries when
// full: `BPF_MAP_TYPE_LRU_HASH`.
type LRUHash[K, V Elem] struct{ kv[K, V] }

// Declare names the map and sizes it; generated code calls it.
func (m *LRUHash[K, V]) Declare(name string, opts MapOptions) { m.decl(name, ebpf.LRUHash, opts) }

// Delete removes key.
func (m *LRUHash[K, V]) Delete(c Ctx, key K) { m.delete(c, key) }

// Take deletes the entry under key, if any, and runs found with a copy of
// its value.
func (m *LRUHash[K, V]) Take(c Ctx, key K, found func(v V)) { m.take(c, key, found) }

// PerCPUHash is a hash map with one value per CPU under each key:
// `BPF_MAP_TYPE_PERCPU_HASH`. User space sums or lists them.
type PerCPUHash[K, V Elem] struct{ kv[K, V] }

// Declare names the map and sizes it; generated code calls it.
func (m *PerCPUHash[K, V]) Declare(name string, opts MapOptions) {
	m.decl(name, ebpf.PerCPUHash, opts)
}

// Delete removes key (on every CPU).
func (m *PerCPUHash[K, V]) Delete(c Ctx, key K) { m.delete(c, key) }

// Array is an array of V indexed by a U32: `BPF_MAP_TYPE_ARRAY`; every
// element exists from the start, zeroed.
type Array[V Elem] struct{ kv[U32, V] }

// Declare names the array and sets its length; generated code calls it.
func (m *Array[V]) Declare(name string, opts MapOptions) { m.decl(name, ebpf.Array, opts) }

// PerCPUArray is an array with one V per CPU in each element:
// `BPF_MAP_TYPE_PERCPU_ARRAY`.
type PerCPUArray[V Elem] struct{ kv[U32, V] }

// Declare names the array and sets its length; generated code calls it.
func (m *PerCPUArray[V]) Declare(name string, opts MapOptions) { m.decl(name, ebpf.PerCPUArray, opts) }

func (m *kv[K, V]) delete(c Ctx, key K) {
	p := c.program()
	if !m.use(p) {
		return
	}
	km, release := keyMem(p, key)
	km.addr(p, asm.R2, 0)
	p.Emit(asm.LoadMapPtr(asm.R1, 0).WithReference(m.name), asm.FnMapDeleteElem.Call())
	release()
}

func (m *kv[K, V]) take(c Ctx, key K, found func(v V)) {
	p := c.program()
	if !m.use(p) {
		return
	}
	var v V
	size := v.elemSize()
	// The key stays in memory for the delete; the value is copied to the
	// stack first, so found may end the program (Exit) without leaving
	// the entry behind, and reads no memory the map may reuse.
	km, release := keyMem(p, key)
	defer release()
	m.callLookup(p, km)
	end := p.Label("take")
	p.Emit(asm.JEq.Imm(asm.R0, 0, end))
	// The copy calls no helper: the pointer stays in r0.
	cp := mem{stack: p.Alloc(size), size: size}
	cp.copyFrom(p, 0, size, Bytes{m: mem{inReg: true, reg: asm.R0, size: size}, size: size})
	km.addr(p, asm.R2, 0)
	p.Emit(asm.LoadMapPtr(asm.R1, 0).WithReference(m.name), asm.FnMapDeleteElem.Call())
	found(bound[V](p, cp))
	p.Mark(end)
}

// Global is one V shared by every probe of the package, like a C global:
// a one-element array. Get gives its memory to read, write and add to.
type Global[V Elem] struct{ kv[U32, V] }

// Declare names the global; generated code calls it.
func (g *Global[V]) Declare(name string, opts MapOptions) {
	opts.MaxEntries = 1
	g.decl(name, ebpf.Array, opts)
}

// Get is the global's memory, reached directly (`&global`: a BPF_PSEUDO_MAP_VALUE
// load, no lookup) wherever the value is read or written.
func (g *Global[V]) Get(c Ctx) V {
	p := c.program()
	var v V
	if !g.use(p) {
		return v
	}
	return bound[V](p, mem{global: g.name, size: v.elemSize()})
}
