// Package solisten traces listen(2) on IPv4 and IPv6 sockets: who listens
// on which address and port, with what backlog and result. It is a port of
// bcc's libbpf-tools solisten.
package solisten

import (
	"syscall"

	"github.com/fentrygen/fentrygen/runtime"
)

//go:generate go tool fentrygen

// OnlyPid, when not zero, limits tracing to one process.
var OnlyPid uint32

// Event is one inet_listen call, seen as it returns.
//
//fentrygen:event
type Event struct {
	Addr6   [16]byte
	Addr4   uint32 // network byte order
	Pid     uint32
	Backlog int32
	Ret     int32
	Family  uint16
	Type    int16
	Sport   uint16 // network byte order
	Task    [16]byte
}

//fexit:inet_listen args=sock,backlog ret
func onListen(p *OnListen) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	sk := p.Sock.Sk()
	e := NewEventView(p)
	e.SetFamily(sk.SkCommon().SkcFamily())
	e.SetType(p.Sock.Type())
	e.SetSport(runtime.Field[uint16](sk.Ptr().As("inet_sock"), "inet_sport"))
	p.IfElse(e.Family().Eq(syscall.AF_INET), func() {
		e.SetAddr4(sk.SkCommon().SkcRcvSaddr())
	}, func() {
		e.SetAddr6FromKernel(sk.SkCommon().SkcV6RcvSaddr().Ptr())
	})
	e.SetTaskFromCurrent()
	e.SetPid(runtime.TgidValue())
	e.SetBacklog(p.Backlog)
	e.SetRet(p.Ret)
	e.Output()
}
