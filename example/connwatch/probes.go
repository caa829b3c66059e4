// Package connwatch traces IPv4 TCP connects: who connects where (fentry on
// tcp_v4_connect), with what result (fexit), and can refuse one destination
// port (fmod_ret on security_socket_connect).
package connwatch

import (
	"syscall"

	"github.com/fentrygen/fentrygen/runtime"
)

//go:generate go tool fentrygen

// OnlyPid, when not zero, limits the probes to one process. Stubs run when
// a program is built, so plain Go settles what the kernel side checks.
var OnlyPid uint32

// DeniedPort is the destination port that denyConnect refuses with EPERM;
// zero refuses nothing.
var DeniedPort uint16

// ConnectEvent is one IPv4 TCP connect, seen on entry to tcp_v4_connect.
//
//fentrygen:event
type ConnectEvent struct {
	Ts     uint64
	Pid    uint32
	Family uint16
	Dport  uint16 // network byte order
	Daddr  uint32 // network byte order
	Comm   [16]byte
}

// ConnectResult is what tcp_v4_connect returned.
//
//fentrygen:event
type ConnectResult struct {
	Pid uint32
	Ret int32
}

//fentry:tcp_v4_connect args=sk,uaddr:sockaddr_in
func onConnect(p *OnConnect) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	e := NewConnectEventView(p)
	e.SetTs(runtime.KtimeNs())
	e.SetPid(runtime.TgidValue())
	e.SetFamily(p.Sk.SkCommon().SkcFamily())
	e.SetDport(p.Uaddr.SinPort())
	e.SetDaddr(p.Uaddr.SinAddr().SAddr())
	e.SetCommFromCurrent()
	e.Output()
}

//fexit:tcp_v4_connect args=sk ret
func onConnectExit(p *OnConnectExit) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	e := NewConnectResultView(p)
	e.SetPid(runtime.TgidValue())
	e.SetRet(p.Ret)
	e.Output()
}

// denyConnect refuses IPv4 connects to DeniedPort; the socket's family is
// two pointer hops away (sock->sk->__sk_common.skc_family).
//
// fmod_ret:security_socket_connect args=sock,address:sockaddr_in
func denyConnect(p *DenyConnect) {
	if DeniedPort == 0 {
		return
	}
	port := DeniedPort<<8 | DeniedPort>>8 // sin_port is big-endian
	ipv4 := p.Sock.Sk().SkCommon().SkcFamily().Eq(syscall.AF_INET)
	p.If(ipv4.And(p.Address.SinPort().Eq(port)), func() {
		p.Return(-int32(syscall.EPERM))
	})
}
