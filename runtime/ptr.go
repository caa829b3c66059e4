package runtime

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// Ptr is a pointer to a struct or union called typ, with a member path
// prefix for members reached by value (sock's __sk_common). Generated
// accessor types wrap a Ptr; each method is one member.
type Ptr struct {
	addr    expr
	typ     string
	prefix  string
	trusted bool
}

// Type is the struct or union the pointer's path starts from.
func (p Ptr) Type() string { return p.typ }

// Path is the member path from Type to this value ("" for the pointer
// itself).
func (p Ptr) Path() string { return p.prefix }

// Trusted reports whether the verifier types the pointer from BTF, so
// member reads are direct loads; otherwise they copy through
// bpf_probe_read_kernel.
func (p Ptr) Trusted() bool { return p.trusted }

func (p Ptr) join(member string) string {
	if p.prefix == "" {
		return member
	}
	return p.prefix + "." + member
}

func (p Ptr) base() expr {
	if p.addr == nil {
		return errExpr{fmt.Errorf("use of a zero Ptr: pointers come from arguments, members or the current task")}
	}
	return p.addr
}

// Member is a struct or union member embedded by value: no load, the path
// grows.
func (p Ptr) Member(name string) Ptr {
	p.prefix = p.join(name)
	return p
}

// Index is the path element name[i], for array members.
func Index(name string, i int) string { return fmt.Sprintf("%s[%d]", name, i) }

// Value is the address of the member path (the pointer itself when the
// path is empty), as an integer: a map key, an event field, a comparison
// with 0.
func (p Ptr) Value() U64 { return numOf[uint64](p.address()) }

// address computes the address of the member path, relocated.
func (p Ptr) address() expr {
	base := p.base()
	if p.prefix == "" {
		return base
	}
	r := &relocation{role: roleFieldAddr, typ: p.typ, path: p.prefix}
	return genFunc{
		f: func(prog *Program, dst asm.Register, scratch regs) {
			base.gen(prog, dst, scratch)
			prog.Emit(withReloc(asm.Add.Imm(dst, 0), r))
		},
		helper: base.calls(),
		upper:  extBoth,
	}
}

// As views the pointee as struct or union typ (for example a struct
// sockaddr * as sockaddr_in). The verifier no longer types such a pointer,
// so reads through it use bpf_probe_read_kernel.
func (p Ptr) As(typ string) Ptr {
	return Ptr{addr: p.address(), typ: typ, trusted: false}
}

// Deref follows the pointer member name to a struct or union called typ:
// `*(void **)(ptr + offsetof(...))`, one load per hop.
func (p Ptr) Deref(name, typ string) Ptr {
	return Ptr{addr: readMember(p, name, 8, false), typ: typ, trusted: p.trusted}
}

// Field reads member name of p as a T: `*(T *)(ptr + offsetof(typ, path))`,
// the offset resolved on the target kernel. A member that is a bitfield
// there is read with the load and shifts that kernel needs, so one program
// reads a member that is a bitfield on one kernel and a plain integer on
// another. Through an untyped pointer the bytes are copied with
// bpf_probe_read_kernel first.
func Field[T Integer](p Ptr, name string) Num[T] {
	return numOf[T](readMember(p, name, sizeOf[T](), signedOf[T]()))
}

func readMember(p Ptr, name string, size int, signed bool) expr {
	path := p.join(name)
	base := p.base()
	if _, err := SizeOf(size); err != nil {
		return errExpr{fmt.Errorf("%s.%s: %w", p.typ, path, err)}
	}
	r := &relocation{role: roleMember, typ: p.typ, path: path, size: size, signed: signed}
	if p.trusted {
		return genFunc{
			f: func(prog *Program, dst asm.Register, scratch regs) {
				base.gen(prog, dst, scratch)
				// Placeholder: relocation makes it the load (and shifts)
				// the target kernel's layout needs.
				prog.Emit(withReloc(asm.LoadMem(dst, dst, 0, asm.DWord), r))
			},
			helper: base.calls(),
			upper:  memberExt(signed),
		}
	}
	return genFunc{
		f: func(prog *Program, dst asm.Register, scratch regs) {
			slot := prog.tempSlot()
			defer prog.freeSlot(slot)
			base.gen(prog, asm.R3, scratch)
			prog.Emit(
				withReloc(asm.Add.Imm(asm.R3, 0), &relocation{role: roleFieldAddr, typ: p.typ, path: path}),
				asm.Mov.Reg(asm.R1, asm.RFP),
				asm.Add.Imm(asm.R1, int32(slot)),
				withReloc(asm.Mov.Imm(asm.R2, int32(size)), &relocation{role: roleReadSize, typ: p.typ, path: path, size: size}),
				asm.FnProbeReadKernel.Call(),
				withReloc(asm.LoadMem(dst, asm.RFP, slot, asm.DWord), &relocation{role: roleStackMember, typ: p.typ, path: path, size: size, signed: signed}),
			)
		},
		helper: true,
		upper:  memberExt(signed),
	}
}

// memberExt is what a member read leaves above the member: zeroes for an
// unsigned one (a load, or a bitfield's logical shift); for a signed one it
// depends on the kernel (a load zero-extends, a bitfield's arithmetic shift
// sign-extends), so nothing is promised.
func memberExt(signed bool) ext {
	if signed {
		return extNone
	}
	return extZero
}

// Addr is a kernel address to copy bytes or a string from: a [Ptr] (the
// address of its member path) or a U64 holding a pointer.
type Addr interface {
	address() expr
}

func (n Num[T]) address() expr {
	if sizeOf[T]() != 8 {
		return errExpr{fmt.Errorf("a %d-byte value used as an address (want a U64)", sizeOf[T]())}
	}
	return n.valid()
}
