package runtime

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/cilium/ebpf/asm"
)

// mem is memory a program reads and writes with plain loads and stores: a
// region of its stack, or a map value whose pointer waits in a register or
// a stack slot.
type mem struct {
	// stack is the region's offset from r10 when ptr is 0 and inReg false.
	stack int16
	// ptr is the offset from r10 of the slot holding a map value pointer.
	ptr int16
	// inReg says reg holds the map value pointer: a callee-saved register
	// through a lookup's callback, or r0 for code that calls no helper.
	inReg bool
	reg   asm.Register
	// global names a one-element array whose value is the region, reached
	// by direct map value access (no lookup, no stack).
	global string
	size   int
	// scope is closed once the map value may no longer be used.
	scope *scope
}

// scope is the part of a program where a map value pointer is valid: a
// lookup's callback.
type scope struct {
	closed bool
	what   string
	// used is set once code reads the pointer: a callback that never
	// touches the value needs it on the stack no more than in r0.
	used bool
}

func (m mem) check(p *Program) bool {
	if m.size == 0 {
		p.fail(fmt.Errorf("use of a zero view: views come from NewXView, map lookups and Global.Get"))
		return false
	}
	if m.scope != nil && m.scope.closed {
		p.fail(fmt.Errorf("a map value from %s used after its callback returned", m.scope.what))
		return false
	}
	return true
}

// base emits code giving a register and offset through which the region
// is addressed: r10 and the stack offset, or tmp loaded with the map value
// pointer and 0.
func (m mem) base(p *Program, tmp asm.Register) (asm.Register, int16) {
	switch {
	case m.global != "":
		p.Emit(asm.LoadMapValue(tmp, 0, 0).WithReference(m.global))
		return tmp, 0
	case m.inReg:
		if m.scope != nil {
			m.scope.used = true
		}
		return m.reg, 0
	case m.ptr == 0:
		return asm.RFP, m.stack
	}
	if m.scope != nil {
		m.scope.used = true
	}
	p.Emit(asm.LoadMem(tmp, asm.RFP, m.ptr, asm.DWord))
	return tmp, 0
}

// addr emits `dst = address of the region + off`.
func (m mem) addr(p *Program, dst asm.Register, off int16) {
	reg, base := m.base(p, dst)
	if reg != dst {
		p.Emit(asm.Mov.Reg(dst, reg))
	}
	if base+off != 0 {
		p.Emit(asm.Add.Imm(dst, int32(base+off)))
	}
}

// onStack reports whether the region is on the program's stack.
func (m mem) onStack() bool { return m.ptr == 0 && m.global == "" && !m.inReg }

// zero emits stores of 0 over the whole stack region (map values are
// zeroed by the kernel).
func (m mem) zero(p *Program) {
	if m.onStack() {
		p.emitAll(ZeroStack(m.stack, m.size))
	}
}

// stackMem reserves and zeroes size bytes of stack for the rest of the
// program.
func stackMem(p *Program, size int) mem {
	m := mem{stack: p.Alloc(size), size: size}
	m.zero(p)
	return m
}

// memLoad reads size bytes at off of a memory region.
type memLoad struct {
	m      mem
	off    int16
	size   int
	signed bool
}

func (l memLoad) calls() bool { return false }
func (l memLoad) ext() ext    { return extZero }
func (l memLoad) gen(p *Program, dst asm.Register, _ regs) {
	if !l.m.check(p) {
		return
	}
	sz, err := SizeOf(l.size)
	if err != nil {
		p.fail(err)
		return
	}
	reg, base := l.m.base(p, dst)
	p.Emit(asm.LoadMem(dst, reg, base+l.off, sz))
}

// store emits `*(size *)(region + off) = v`.
func (m mem) store(p *Program, off int16, v scalar) {
	if !m.check(p) {
		return
	}
	sz, err := SizeOf(v.size)
	if err != nil {
		p.fail(err)
		return
	}
	if imm, ok := fitsImm(v.e); ok && m.onStack() {
		if sz == asm.DWord {
			p.Emit(storeImm64(asm.RFP, m.stack+off, imm))
		} else {
			p.Emit(asm.StoreImm(asm.RFP, m.stack+off, int64(imm), sz))
		}
		return
	}
	// The value first (it may call helpers), in r0 where helpers leave
	// their results.
	v.loadRaw(p, asm.R0, callerSaved.without(asm.R0))
	reg, base := m.base(p, asm.R1)
	p.Emit(asm.StoreMem(reg, base+off, asm.R0, sz))
}

// atomicAdd emits `lock *(size *)(region + off) += v` (4 or 8 bytes).
func (m mem) atomicAdd(p *Program, off int16, v scalar) {
	if !m.check(p) {
		return
	}
	if v.size != 4 && v.size != 8 {
		p.fail(fmt.Errorf("atomic add of a %d-byte value: BPF adds 4 or 8 bytes atomically", v.size))
		return
	}
	sz, _ := SizeOf(v.size)
	v.loadRaw(p, asm.R0, callerSaved.without(asm.R0))
	reg, base := m.base(p, asm.R1)
	p.Emit(asm.AddAtomic.Mem(reg, asm.R0, sz, base+off))
}

// copyFrom emits a copy of src's size bytes into the region at off, with
// plain loads and stores.
func (m mem) copyFrom(p *Program, off int16, size int, src Bytes) {
	if !m.check(p) || !src.m.check(p) {
		return
	}
	if src.size != size {
		p.fail(fmt.Errorf("copy of %d bytes into a %d-byte field", src.size, size))
		return
	}
	for i := 0; i < size; {
		n := 8
		for n > size-i || (int(off)+i)%n != 0 || (int(src.off)+i)%n != 0 {
			n /= 2
		}
		sz, _ := SizeOf(n)
		sreg, sbase := src.m.base(p, asm.R3)
		p.Emit(asm.LoadMem(asm.R1, sreg, sbase+src.off+int16(i), sz))
		dreg, dbase := m.base(p, asm.R2)
		p.Emit(asm.StoreMem(dreg, dbase+off+int16(i), asm.R1, sz))
		i += n
	}
}

// storeImm64 is `*(u64 *)(dst + off) = imm` (imm sign-extended): an
// 8-byte store of an immediate, which cilium/ebpf's asm.StoreImm does not
// build.
func storeImm64(dst asm.Register, off int16, imm int32) asm.Instruction {
	return asm.Instruction{OpCode: asm.StoreImmOp(asm.DWord), Dst: dst, Offset: off, Constant: int64(imm)}
}

// Bytes is a byte array field of a view: source of a copy into another.
type Bytes struct {
	m    mem
	off  int16
	size int
}

// View is one of your structs in program memory, laid out as Go lays it
// out: on the stack (events, keys, values being built) or in a map value.
// Generated XView types embed a ViewOf[X]; their methods read and write
// X's fields.
type View struct {
	p *Program
	m mem
}

// ViewOf is a [View] of a value of Go type X. Generated code embeds it.
type ViewOf[X any] struct{ View }

// NewView reserves and zeroes an X on the program's stack.
func NewView[X any](c Ctx) ViewOf[X] {
	p := c.program()
	var x X
	t := reflect.TypeOf(x)
	if t == nil || !plain(t) {
		p.fail(fmt.Errorf("%T is not plain data: views hold fixed-size integers and arrays or structs of them", x))
		return ViewOf[X]{}
	}
	return ViewOf[X]{View{p: p, m: stackMem(p, int(unsafe.Sizeof(x)))}}
}

func (v ViewOf[X]) elemSize() int { var x X; return int(unsafe.Sizeof(x)) }

func (v ViewOf[X]) elemType() reflect.Type { return reflect.TypeFor[X]() }

func (v *ViewOf[X]) bind(p *Program, m mem) { v.View = View{p: p, m: m} }

func (v ViewOf[X]) memory(p *Program) (mem, func()) { return v.m, func() {} }

func (v View) prog() *Program {
	if v.p == nil {
		// A zero view: report through whatever program builds next is
		// not possible; panic with a clear message instead.
		panic("fentrygen: use of a zero view (views come from NewXView, map lookups and Global.Get)")
	}
	return v.p
}

// Get reads the field of Go type T at off: `*(T *)(view + off)`.
func Get[T Integer](v View, off uintptr) Num[T] {
	return numOf[T](memLoad{m: v.m, off: int16(off), size: sizeOf[T](), signed: signedOf[T]()})
}

// Set stores x into the field at off: `*(T *)(view + off) = x`.
func Set[T Integer](v View, off uintptr, x Num[T]) {
	v.m.store(v.prog(), int16(off), x.s())
}

// AtomicAdd adds x to the field at off atomically: `lock *(T *)(view + off)
// += x` (4- and 8-byte fields).
func AtomicAdd[T Integer](v View, off uintptr, x Num[T]) {
	v.m.atomicAdd(v.prog(), int16(off), x.s())
}

// BytesOf is the byte array field of v at off, size bytes long: the source
// of a copy into another view.
func BytesOf(v View, off, size uintptr) Bytes {
	return Bytes{m: v.m, off: int16(off), size: int(size)}
}

// SetBytes copies b into the byte array field at off (sizes must match):
// plain loads and stores.
func SetBytes(v View, off, size uintptr, b Bytes) {
	v.m.copyFrom(v.prog(), int16(off), int(size), b)
}

// SetComm stores the current task's comm into the 16-byte field at off:
// bpf_get_current_comm.
func SetComm(v View, off, size uintptr) {
	p := v.prog()
	if size != CommLen {
		p.fail(fmt.Errorf("comm field at %d is %d bytes, want %d", off, size, CommLen))
		return
	}
	if !v.m.check(p) {
		return
	}
	v.m.addr(p, asm.R1, int16(off))
	p.Emit(asm.Mov.Imm(asm.R2, CommLen), asm.FnGetCurrentComm.Call())
}

// SetString copies the NUL-terminated kernel string at a into the byte
// array field at off, size bytes at most with the NUL:
// bpf_probe_read_kernel_str.
func SetString(v View, off, size uintptr, a Addr) {
	v.probeRead(asm.FnProbeReadKernelStr, off, size, a)
}

// SetKernelBytes copies size bytes from kernel address a into the byte
// array field at off: bpf_probe_read_kernel.
func SetKernelBytes(v View, off, size uintptr, a Addr) {
	v.probeRead(asm.FnProbeReadKernel, off, size, a)
}

func (v View) probeRead(fn asm.BuiltinFunc, off, size uintptr, a Addr) {
	p := v.prog()
	if !v.m.check(p) {
		return
	}
	src := a.address()
	// r3 = a first: computing it may call helpers.
	src.gen(p, asm.R3, callerSaved.without(asm.R3))
	v.m.addr(p, asm.R1, int16(off))
	p.Emit(asm.Mov.Imm(asm.R2, int32(size)), fn.Call())
}

// elem is what a map's keys and values are: a Num or a view.
type elem interface {
	elemSize() int
	elemType() reflect.Type
}

// binder is implemented by pointers to elems: it makes the elem the
// contents of memory.
type binder interface {
	bind(p *Program, m mem)
}

// memoryOf is implemented by elems: it places the value in memory for a
// helper to read, and returns how to release that memory.
type memoryOf interface {
	memory(p *Program) (mem, func())
}

func (n Num[T]) elemSize() int          { return sizeOf[T]() }
func (n Num[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }
func (n *Num[T]) bind(p *Program, m mem) {
	n.e = memLoad{m: m, size: sizeOf[T](), signed: signedOf[T]()}
}

func (n Num[T]) memory(p *Program) (mem, func()) {
	slot := p.tempSlot()
	m := mem{stack: slot, size: sizeOf[T]()}
	m.store(p, 0, n.s())
	return m, func() { p.freeSlot(slot) }
}

// bound returns a V that is the contents of m.
func bound[V elem](p *Program, m mem) V {
	var v V
	any(&v).(binder).bind(p, m)
	return v
}
