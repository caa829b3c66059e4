// Package tcprtt summarizes TCP round-trip times as log2 histograms: the
// smoothed RTT of each socket as it receives a segment, for all addresses
// or by local or remote address. It is a port of bcc's libbpf-tools
// tcprtt.
package tcprtt

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// What onRcv filters and keys on, set by Run: ports and addresses in
// network byte order, zero for any.
var (
	Lport, Rport       uint16
	Laddr, Raddr       uint32
	ByLaddr, ByRaddr   bool
	Extended, Millisec bool
)

// Ext sums the RTTs a histogram counts, for their average.
type Ext struct {
	Latency, Cnt uint64
}

// hists are the RTT histograms by address (0 for all).
//
//fentrygen:map max=10240
var hists runtime.Log2HistBy[runtime.U64]

// exts are, with -e, the sums behind each histogram's average.
//
//fentrygen:map max=10240
var exts runtime.Hash[runtime.U64, ExtView]

//fentry:tcp_rcv_established args=sk:tcp_sock
func onRcv(p *OnRcv) {
	inet := p.Sk.InetConn().IcskInet()
	sk := inet.Sk().SkCommon()
	if Lport != 0 {
		p.If(inet.InetSport().Ne(Lport), p.Exit)
	}
	if Rport != 0 {
		p.If(sk.SkcDport().Ne(Rport), p.Exit)
	}
	if Laddr != 0 {
		p.If(inet.InetSaddr().Ne(Laddr), p.Exit)
	}
	if Raddr != 0 {
		p.If(sk.SkcDaddr().Ne(Raddr), p.Exit)
	}
	key := runtime.Uint64(0)
	if ByLaddr {
		key = inet.InetSaddr().U64()
	} else if ByRaddr {
		key = sk.SkcDaddr().U64()
	}
	srtt := p.Sk.SrttUs().Shr(3)
	if Millisec {
		srtt = srtt.Div(1000)
	}
	hists.Record(p, key, srtt)
	if Extended {
		exts.LookupOrInit(p, key, func(x ExtView) {
			x.AddLatency(srtt.U64())
			x.AddCnt(runtime.Uint64(1))
		})
	}
}
