// Package execsnoop traces exec(2): the new program's file name, its pid,
// its parent's pid and its comm. It attaches to the BTF-typed tracepoint
// sched_process_exec (tp_btf), which hosts that refuse fentry often allow.
package execsnoop

//go:generate go tool fentrygen

// OnlyParent, when not zero, keeps the execs of this process's children.
var OnlyParent uint32

// Exec is one successful exec.
//
//fentrygen:event
type Exec struct {
	Pid      uint32
	Ppid     uint32
	Comm     [16]byte
	Filename [128]byte
}

// tp_btf:sched_process_exec args=p,bprm
func onExec(p *OnExec) {
	ppid := p.P.RealParent().Tgid().U32()
	if OnlyParent != 0 {
		p.If(ppid.Ne(OnlyParent), p.Exit)
	}
	e := NewExecView(p)
	e.SetPid(p.P.Tgid().U32())
	e.SetPpid(ppid)
	e.SetCommFromCurrent()
	e.SetFilenameFromString(p.Bprm.Filename())
	e.Output()
}
