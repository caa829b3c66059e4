package runtime

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// source emits code that leaves a value in dst.
type source interface {
	load(p *Program, dst asm.Register)
}

// Scalar is an integer value the program can load into a register: an
// argument, a return value, a member read, a helper's result or a constant.
// Size is its width in bytes (what an event field stores).
type Scalar struct {
	src    source
	size   int
	signed bool
}

// Size is the value's width in bytes.
func (s Scalar) Size() int { return s.size }

// Signed reports whether the value is sign-extended when loaded.
func (s Scalar) Signed() bool { return s.signed }

type sourceFunc func(p *Program, dst asm.Register)

func (f sourceFunc) load(p *Program, dst asm.Register) { f(p, dst) }

// Arg is argument name of the traced function: `dst = ((u64 *)ctx)[slot]`,
// narrowed to size bytes. slot is what BTF said at generate time; the load
// is relocated to the target kernel's slot for name.
func (p *Program) Arg(name string, slot, size int, signed bool) Scalar {
	return Scalar{src: sourceFunc(func(p *Program, dst asm.Register) {
		ins := withReloc(LoadCtx(dst, CtxReg, slot), &relocation{role: roleArgSlot, fn: p.info.Target, arg: name, size: size})
		p.Emit(ins)
		p.emitAll(Narrow(dst, size, signed))
	}), size: size, signed: signed}
}

// ArgWord is word w (0 or 1) of a struct or union argument passed by value
// in two slots (9 to 16 bytes): `dst = ((u64 *)ctx)[slot + w]`, the whole
// u64. The slot is relocated by name like [Program.Arg].
func (p *Program) ArgWord(name string, slot, w int) Scalar {
	return Scalar{src: sourceFunc(func(p *Program, dst asm.Register) {
		if w < 0 || w > 1 {
			p.fail(fmt.Errorf("argument %s: word %d of a by-value struct (want 0 or 1)", name, w))
			return
		}
		p.Emit(withReloc(LoadCtx(dst, CtxReg, slot+w), &relocation{role: roleArgSlot, fn: p.info.Target, arg: name, word: w}))
	}), size: 8}
}

// ArgPtr is a pointer argument to a struct or union called typ: member reads
// through it are direct loads (the verifier types it from BTF).
func (p *Program) ArgPtr(name string, slot int, typ string) Ptr {
	return Ptr{src: p.Arg(name, slot, 8, false).src, typ: typ, trusted: true}
}

// Ret is the traced function's return value (fexit) or the previous fmod_ret
// result (fmod_ret): `dst = ((u64 *)ctx)[nrSlots]`, narrowed to size bytes
// and sign-extended when signed. nrSlots is relocated like an argument slot.
func (p *Program) Ret(nrSlots, size int, signed bool) Scalar {
	return Scalar{src: sourceFunc(func(p *Program, dst asm.Register) {
		if p.info.Kind == Fentry {
			p.fail(fmt.Errorf("fentry programs have no return value"))
			return
		}
		ins := withReloc(LoadCtx(dst, CtxReg, nrSlots), &relocation{role: roleRetSlot, fn: p.info.Target, size: size})
		p.Emit(ins)
		p.emitAll(Narrow(dst, size, signed))
	}), size: size, signed: signed}
}

// Const is the constant v, size bytes wide.
func Const(v int64, size int) Scalar {
	return Scalar{src: sourceFunc(func(p *Program, dst asm.Register) {
		if v == int64(int32(v)) {
			p.Emit(asm.Mov.Imm(dst, int32(v)))
		} else {
			p.Emit(asm.LoadImm(dst, v, asm.DWord))
		}
	}), size: size, signed: v < 0}
}

func helper(size int, insns func(dst asm.Register) asm.Instructions) Scalar {
	return Scalar{src: sourceFunc(func(p *Program, dst asm.Register) { p.emitAll(insns(dst)) }), size: size}
}

// KtimeNs is bpf_ktime_get_ns(): monotonic nanoseconds.
func KtimeNs() Scalar { return helper(8, KtimeGetNs) }

// TgidValue is the current process id (upper half of pid_tgid).
func TgidValue() Scalar { return helper(4, Tgid) }

// TidValue is the current thread id (lower half of pid_tgid).
func TidValue() Scalar { return helper(4, Tid) }

// PidTgidValue is bpf_get_current_pid_tgid().
func PidTgidValue() Scalar { return helper(8, PidTgid) }

// Ptr is a pointer to a struct or union called typ, with a member path
// prefix for members reached by value (sock's __sk_common). Generated
// accessor types wrap a Ptr; each method is one member.
type Ptr struct {
	src     source
	typ     string
	prefix  string
	trusted bool
}

// Type is the struct or union the pointer's path starts from.
func (p Ptr) Type() string { return p.typ }

// Path is the member path from Type to this value ("" for the pointer
// itself).
func (p Ptr) Path() string { return p.prefix }

func (p Ptr) join(member string) string {
	if p.prefix == "" {
		return member
	}
	return p.prefix + "." + member
}

// Member is a struct or union member embedded by value: no load, the path
// grows.
func (p Ptr) Member(name string) Ptr {
	p.prefix = p.join(name)
	return p
}

// Value is the pointer itself as a u64.
func (p Ptr) Value() Scalar {
	return Scalar{src: p.address(), size: 8}
}

// address loads the address of the member path, not just the base pointer,
// so an embedded member's pointer is exact.
func (p Ptr) address() source {
	return sourceFunc(func(prog *Program, dst asm.Register) {
		p.src.load(prog, dst)
		if p.prefix != "" {
			prog.Emit(withReloc(asm.Add.Imm(dst, 0), &relocation{role: roleFieldAddr, typ: p.typ, path: p.prefix}))
		}
	})
}

// As views the pointee as struct or union typ (for example a struct
// sockaddr * as sockaddr_in). The verifier no longer types such a pointer,
// so reads through it use bpf_probe_read_kernel.
func (p Ptr) As(typ string) Ptr {
	return Ptr{src: p.address(), typ: typ, trusted: false}
}

// Field reads member name, size bytes wide: `dst = *(uN *)(ptr + offsetof(typ,
// path))`, the offset resolved on the target kernel. Through an untyped
// pointer it copies the bytes with bpf_probe_read_kernel first.
func (p Ptr) Field(name string, size int, signed bool) Scalar {
	path := p.join(name)
	return Scalar{src: sourceFunc(func(prog *Program, dst asm.Register) {
		sz, err := SizeOf(size)
		if err != nil {
			prog.fail(fmt.Errorf("%s.%s: %w", p.typ, path, err))
			return
		}
		r := &relocation{role: roleFieldOff, typ: p.typ, path: path, size: size}
		if p.trusted {
			p.src.load(prog, dst)
			prog.Emit(withReloc(asm.LoadMem(dst, dst, 0, sz), r))
		} else {
			off := prog.Alloc(8)
			p.src.load(prog, asm.R3)
			prog.Emit(withReloc(asm.Add.Imm(asm.R3, 0), &relocation{role: roleFieldAddr, typ: p.typ, path: path, size: size}))
			prog.emitAll(ProbeRead(off, int32(size), asm.R3))
			prog.Emit(asm.LoadMem(dst, asm.RFP, off, sz))
		}
		prog.emitAll(Narrow(dst, size, signed))
	}), size: size, signed: signed}
}

// Bitfield reads the bitfield member name: a load covering it, then shifts
// (arithmetic when signed), all three relocated. size is the width of the
// value as stored in events.
func (p Ptr) Bitfield(name string, size int, signed bool) Scalar {
	path := p.join(name)
	return Scalar{src: sourceFunc(func(prog *Program, dst asm.Register) {
		if !p.trusted {
			prog.fail(fmt.Errorf("%s.%s: bitfields are read through BTF-typed pointers only", p.typ, path))
			return
		}
		p.src.load(prog, dst)
		// Placeholders: a 1-byte load and a 0-bit shift, patched on load.
		insns, err := ReadBitfield(dst, dst, 0, 1, 0, 1, signed)
		if err != nil {
			prog.fail(err)
			return
		}
		roles := []role{roleBitLoad, roleBitLShift, roleBitRShift}
		for i := range insns {
			prog.Emit(withReloc(insns[i], &relocation{role: roles[i], typ: p.typ, path: path}))
		}
	}), size: size, signed: signed}
}

// Deref follows the pointer member name to a struct or union called typ:
// `dst = *(u64 *)(ptr + offsetof(...))`, one load per hop.
func (p Ptr) Deref(name, typ string) Ptr {
	return Ptr{src: p.Field(name, 8, false).src, typ: typ, trusted: p.trusted}
}

// Index is the path element name[i], for array members.
func Index(name string, i int) string { return fmt.Sprintf("%s[%d]", name, i) }

// Event is a fixed-size record built on the stack and sent to a ring
// buffer. Offsets and sizes come from the Go struct it mirrors
// (unsafe.Offsetof, unsafe.Sizeof), so both sides agree on layout by
// construction.
type Event struct {
	p    *Program
	off  int16
	size int
}

// NewEvent reserves and zeroes size bytes of stack for an event.
func (p *Program) NewEvent(size uintptr) *Event {
	off := p.Alloc(int(size))
	p.emitAll(ZeroStack(off, int(size)))
	return &Event{p: p, off: off, size: int(size)}
}

func (e *Event) check(off, size uintptr, what string) bool {
	if int(off+size) > e.size {
		e.p.fail(fmt.Errorf("event %s at %d+%d overruns the %d-byte event", what, off, size, e.size))
		return false
	}
	return true
}

// Set stores v into the field at off, size bytes wide: `*(uN *)(fp + ev +
// off) = v`.
func (e *Event) Set(off, size uintptr, v Value) {
	sz, err := SizeOf(int(size))
	if err != nil {
		e.p.fail(fmt.Errorf("event field at %d: %w", off, err))
		return
	}
	if !e.check(off, size, "field") {
		return
	}
	e.p.Load(asm.R1, v)
	e.p.Emit(asm.StoreMem(asm.RFP, e.off+int16(off), asm.R1, sz))
}

// SetComm stores the current task's comm into the [16]byte field at off.
func (e *Event) SetComm(off, size uintptr) {
	if size != CommLen {
		e.p.fail(fmt.Errorf("event comm field at %d is %d bytes, want %d", off, size, CommLen))
		return
	}
	if e.check(off, size, "comm") {
		e.p.emitAll(Comm(e.off + int16(off)))
	}
}

// SetString copies the NUL-terminated string at ptr into the byte array at
// off, size bytes at most (NUL included): bpf_probe_read_kernel_str.
func (e *Event) SetString(off, size uintptr, ptr Value) {
	if e.check(off, size, "string") {
		e.p.Load(asm.R3, ptr)
		e.p.emitAll(ProbeReadStr(e.off+int16(off), int32(size), asm.R3))
	}
}

// Output sends the event to the ring buffer called ringbuf:
// bpf_ringbuf_output(&ringbuf, fp + ev, size, 0).
func (e *Event) Output(ringbuf string) {
	if _, ok := e.p.maps[ringbuf]; !ok {
		e.p.fail(fmt.Errorf("event output to undeclared ring buffer %q (declare it with Ringbuf)", ringbuf))
		return
	}
	e.p.emitAll(RingbufOutput(ringbuf, e.off, int32(e.size)))
}

// RetPtr is a pointer return value (fexit) to a struct or union called typ,
// typed by the verifier like a pointer argument.
func (p *Program) RetPtr(nrSlots int, typ string) Ptr {
	return Ptr{src: p.Ret(nrSlots, 8, false).src, typ: typ, trusted: true}
}
