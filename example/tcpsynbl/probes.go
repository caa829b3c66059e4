// Package tcpsynbl summarizes the SYN backlog of TCP listeners as log2
// histograms, one per maximum backlog. It is a port of bcc's libbpf-tools
// tcpsynbl.
package tcpsynbl

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Family, when not zero, limits onQueue to listeners of that family.
var Family uint16

// backlogs holds, per listener maximum backlog, the histogram of backlog
// sizes when a handshake completes.
//
//fentrygen:map max=65536 slots=32
var backlogs runtime.Log2HistBy[runtime.U32]

func record(p runtime.Ctx, sk Sock) { backlogs.Record(p, sk.SkMaxAckBacklog(), sk.SkAckBacklog()) }

//fentry:tcp_v4_syn_recv_sock args=sk
func onV4(p *OnV4) { record(p, p.Sk) }

//fentry:tcp_v6_syn_recv_sock args=sk
func onV6(p *OnV6) { record(p, p.Sk) }

// onQueue stands in for onV4 and onV6 where the trampoline cannot take
// syn_recv_sock's 7 arguments (x86-64 before Linux 6.6): tcp_check_req
// calls it with the same listener right after syn_recv_sock succeeds.
//
//fentry:inet_csk_complete_hashdance args=sk
func onQueue(p *OnQueue) {
	if Family != 0 {
		p.If(p.Sk.SkCommon().SkcFamily().Ne(Family), p.Exit)
	}
	record(p, p.Sk)
}
