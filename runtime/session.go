package runtime

import (
	"fmt"

	"github.com/cilium/ebpf/asm"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// An fsession probe is one stub with an entry part and an exit part
// ([AtEntry], [AtExit]) and a cookie per call that the entry part sets and
// the exit part reads ([SetCookie], [Cookie]). Code outside the parts runs
// at both.
//
// Where the kernel has fsession (BPF_TRACE_FSESSION, Linux 7.0) the stub
// builds one program that the kernel runs at the call and again at the
// return; each part starts with `if (bpf_session_is_return(ctx))` and the
// cookie is the u64 at bpf_session_cookie(ctx), zeroed by the kernel
// before the call's first run. Elsewhere the same stub builds two
// programs: an fentry program with the entry parts and an fexit program
// with the exit parts; the cookie travels in a hash map keyed by
// pid_tgid, which the fexit program takes the call's entry out of before
// anything else (so a filtered exit leaves nothing behind). The results
// are the same but for calls that nest in one thread (recursion): there
// the pair keeps only the innermost call's cookie.

// sessionBuild is what a session program holds: the native program, or
// one of the halves that stand in for it.
type sessionBuild int

const (
	buildNative sessionBuild = iota + 1
	buildEntry
	buildExit
)

// sessionPart is the part of the stub being built.
type sessionPart int

const (
	partNone sessionPart = iota
	partEntry
	partExit
)

var partNames = map[sessionPart]string{partEntry: "AtEntry", partExit: "AtExit"}

// SessionMaxCalls sizes the pair's cookie map: calls in flight at once,
// across threads.
const SessionMaxCalls = 10240

// session is the state of a session program while its stub runs.
type session struct {
	info  Info
	build func(p *Program)
	as    sessionBuild
	in    sessionPart
	// setCookie and readCookie record what the stub did; the exit half
	// takes the cookie out of the map when either is set.
	setCookie, readCookie bool
	// cookieSlot is where the exit half's prologue left the cookie (0:
	// none).
	cookieSlot int16
}

// exitSuffix names the exit half: onRead's is onRead.exit.
const exitSuffix = ".exit"

// NewSession builds the fsession program info describes by running build
// on it: one program, for kernels with fsession. [LoadPackage] asks it for
// the fentry and fexit programs that stand in for it elsewhere, running
// build again. Generated code calls it; build runs the stub.
func NewSession(info Info, build func(p *Program)) *Program {
	return buildSession(info, build, buildNative, false)
}

func buildSession(info Info, build func(p *Program), as sessionBuild, takeCookie bool) *Program {
	half := info
	switch as {
	case buildEntry:
		half.Kind = Fentry
	case buildExit:
		half.Kind, half.Name = Fexit, info.Name+exitSuffix
	}
	p := New(half)
	p.sess = &session{info: info, build: build, as: as}
	if info.Kind != Fsession {
		p.fail(fmt.Errorf("NewSession of a %s program", info.Kind))
		return p
	}
	if takeCookie {
		p.sess.takeCookie(p)
	}
	build(p)
	if p.sess.in != partNone {
		p.fail(fmt.Errorf("the stub returned inside %s", partNames[p.sess.in]))
	}
	return p
}

// Halves returns the fentry and fexit programs that stand in for the
// fsession program p on kernels without fsession: built from the same
// stub, the entry parts in one and the exit parts in the other.
func (p *Program) Halves() (entry, exit *Program, err error) {
	s := p.sess
	if s == nil || s.as != buildNative {
		return nil, nil, fmt.Errorf("program %s: a %s program has no halves", p.info.Name, p.info.Kind)
	}
	entry = buildSession(s.info, s.build, buildEntry, false)
	exit = buildSession(s.info, s.build, buildExit, false)
	if entry.sess.setCookie || exit.sess.readCookie {
		exit = buildSession(s.info, s.build, buildExit, true)
	}
	return entry, exit, nil
}

// cookieMap is the pair's map from pid_tgid to the call's cookie.
func (s *session) cookieMap() *Hash[U64, U64] {
	var m Hash[U64, U64]
	m.Declare(s.info.Name+".cookie", MapOptions{MaxEntries: SessionMaxCalls})
	return &m
}

// takeCookie emits the exit half's prologue: `cookie = 0; if ((v =
// bpf_map_lookup_elem(&cookies, &pid_tgid))) { cookie = *v;
// bpf_map_delete_elem(&cookies, &pid_tgid); }`.
func (s *session) takeCookie(p *Program) {
	m := s.cookieMap()
	if !m.use(p) {
		return
	}
	s.cookieSlot = p.Alloc(8)
	key := mem{stack: p.Alloc(8), size: 8}
	done := p.Label("cookie")
	p.Emit(storeImm64(asm.RFP, s.cookieSlot, 0))
	key.store(p, 0, PidTgidValue().s())
	m.callLookup(p, key)
	p.Emit(
		asm.JEq.Imm(asm.R0, 0, done),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.StoreMem(asm.RFP, s.cookieSlot, asm.R1, asm.DWord),
	)
	key.addr(p, asm.R2, 0)
	p.Emit(asm.LoadMapPtr(asm.R1, 0).WithReference(m.name), asm.FnMapDeleteElem.Call())
	p.Mark(done)
}

// AtEntry adds part to an fsession program: what runs at the call of the
// function. part may read the arguments and set the cookie; it may end
// the run early (Exit).
func AtEntry(c Ctx, part func()) { atPart(c.program(), partEntry, part) }

// AtExit adds part to an fsession program: what runs when the function
// returns. part may read the arguments, the return value and the cookie.
func AtExit(c Ctx, part func()) { atPart(c.program(), partExit, part) }

func atPart(p *Program, which sessionPart, part func()) {
	s := p.sess
	switch {
	case s == nil:
		p.fail(fmt.Errorf("%s in a %s program: only fsession programs have entry and exit parts", partNames[which], p.info.Kind))
		return
	case s.in != partNone:
		p.fail(fmt.Errorf("%s inside %s: parts do not nest", partNames[which], partNames[s.in]))
		return
	}
	switch s.as {
	case buildNative:
		skip := p.Label("not_" + map[sessionPart]string{partEntry: "entry", partExit: "exit"}[which])
		p.Emit(asm.Mov.Reg(asm.R1, CtxReg), KfuncCall(fbtf.KfuncSessionIsReturn, 1))
		if which == partEntry {
			p.Emit(asm.JNE.Imm(asm.R0, 0, skip))
		} else {
			p.Emit(asm.JEq.Imm(asm.R0, 0, skip))
		}
		s.run(which, part)
		p.Mark(skip)
	case buildEntry:
		if which == partEntry {
			s.run(which, part)
		}
	case buildExit:
		if which == partExit {
			s.run(which, part)
		}
	}
}

func (s *session) run(which sessionPart, part func()) {
	s.in = which
	part()
	s.in = partNone
}

// inPart reports whether p builds part which of a session now, failing
// the program with what when not.
func inPart(p *Program, which sessionPart, what string) bool {
	if p.sess == nil || p.sess.in != which {
		p.fail(fmt.Errorf("%s outside %s: %s", what, partNames[which], map[sessionPart]string{
			partEntry: "the entry part sets the cookie",
			partExit:  "the return value and the cookie are read in the exit part",
		}[which]))
		return false
	}
	return true
}

// SetCookie keeps v as this call's cookie, for [Cookie] at its exit:
// `*bpf_session_cookie(ctx) = (u64)v` (fsession), or `cookies[pid_tgid]
// = (u64)v` (the pair). Only in [AtEntry].
func SetCookie[T Integer](c Ctx, v Num[T]) {
	p := c.program()
	if !inPart(p, partEntry, "SetCookie") {
		return
	}
	p.sess.setCookie = true
	wide := v.U64().s()
	switch p.sess.as {
	case buildNative:
		// The cookie's address waits on the stack while v is computed
		// (v may call helpers).
		slot := p.tempSlot()
		p.Emit(asm.Mov.Reg(asm.R1, CtxReg), KfuncCall(fbtf.KfuncSessionCookie, 1), asm.StoreMem(asm.RFP, slot, asm.R0, asm.DWord))
		mem{ptr: slot, size: 8}.store(p, 0, wide)
		p.freeSlot(slot)
	case buildEntry:
		p.sess.cookieMap().Update(p, PidTgidValue(), numOf[uint64](wide.e))
	}
}

// Cookie is this call's cookie as [SetCookie] set it at the call, as T; 0
// when the entry part set none. Only in [AtExit].
func Cookie[T Integer](c Ctx) Num[T] {
	size := sizeOf[T]()
	s := c.program().sess
	return numOf[T](genFunc{
		f: func(p *Program, dst asm.Register, _ regs) {
			if !inPart(p, partExit, "Cookie") {
				return
			}
			p.sess.readCookie = true
			sz, _ := SizeOf(size)
			switch {
			case p.sess.as == buildNative:
				p.Emit(asm.Mov.Reg(asm.R1, CtxReg), KfuncCall(fbtf.KfuncSessionCookie, 1), asm.LoadMem(dst, asm.R0, 0, sz))
			case p.sess.cookieSlot != 0:
				p.Emit(asm.LoadMem(dst, asm.RFP, p.sess.cookieSlot, sz))
			default:
				// The first build of the exit half, which only finds out
				// whether the cookie is read.
				p.Emit(asm.Mov.Imm(dst, 0))
			}
		},
		// The pair reads the stack; fsession calls a kfunc.
		helper: s == nil || s.as == buildNative,
		upper:  extZero,
	})
}
