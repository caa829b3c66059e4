// Package tcpconnlat traces active TCP connects, IPv4 and IPv6, with their
// latency: from connect to the answer (SYN-ACK or RST) that ends SYN_SENT.
// It is a port of bcc's libbpf-tools tcpconnlat.
package tcpconnlat

import (
	"syscall"

	"github.com/fentrygen/fentrygen/runtime"
)

//go:generate go tool fentrygen

// OnlyPid, when not zero, limits tracing to one process; MinUs, when not
// zero, drops connects faster than that many microseconds.
var (
	OnlyPid uint32
	MinUs   uint64
)

const tcpSynSent = 2 // TCP_SYN_SENT

// Start is what a connect leaves for its socket's first answer.
type Start struct {
	Comm [16]byte
	Ts   uint64
	Tgid uint32
}

// Event is one connect, sent when its socket leaves SYN_SENT.
//
//fentrygen:event
type Event struct {
	Saddr6, Daddr6 [16]byte
	Comm           [16]byte
	DeltaUs        uint64
	Ts             uint64 // ns
	Saddr4, Daddr4 uint32 // network byte order
	Tgid           uint32
	Af             uint16
	Lport          uint16
	Dport          uint16 // network byte order
}

// start holds, by socket address, what its connect left.
//
//fentrygen:map max=4096
var start runtime.Hash[runtime.U64, StartView]

func traceConnect(p *runtime.Probe, sk Sock) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	s := NewStartView(p)
	s.SetCommFromCurrent()
	s.SetTs(runtime.KtimeNs())
	s.SetTgid(runtime.TgidValue())
	start.Update(p, sk.Ptr().Value(), s)
}

//fentry:tcp_v4_connect args=sk
func onV4Connect(p *OnV4Connect) { traceConnect(p.Probe, p.Sk) }

//fentry:tcp_v6_connect args=sk
func onV6Connect(p *OnV6Connect) { traceConnect(p.Probe, p.Sk) }

//fentry:tcp_rcv_state_process args=sk
func onRcvStateProcess(p *OnRcvStateProcess) {
	sk := p.Sk.SkCommon()
	p.If(sk.SkcState().Ne(tcpSynSent), p.Exit)
	start.Take(p, p.Sk.Ptr().Value(), func(s StartView) {
		e := NewEventView(p)
		e.SetTs(runtime.KtimeNs())
		delta := e.Ts().SubV(s.Ts())
		p.If(delta.S64().Lt(0), p.Exit)
		e.SetDeltaUs(delta.Div(1000))
		if MinUs != 0 {
			p.If(e.DeltaUs().Lt(MinUs), p.Exit)
		}
		e.SetComm(s.Comm())
		e.SetTgid(s.Tgid())
		e.SetLport(sk.SkcNum())
		e.SetDport(sk.SkcDport())
		e.SetAf(sk.SkcFamily())
		p.IfElse(e.Af().Eq(syscall.AF_INET), func() {
			e.SetSaddr4(sk.SkcRcvSaddr())
			e.SetDaddr4(sk.SkcDaddr())
		}, func() {
			e.SetSaddr6FromKernel(sk.SkcV6RcvSaddr().Ptr())
			e.SetDaddr6FromKernel(sk.SkcV6Daddr().Ptr())
		})
		e.Output()
	})
}
