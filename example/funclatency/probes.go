// Package funclatency times calls of a kernel function and shows their
// latency as a log2 histogram. It is a port of bcc's libbpf-tools
// funclatency, with fentry and fexit where the original uses kprobes.
package funclatency

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Set by Run before loading: the process to trace (0: all) and the unit
// latencies are counted in, in nanoseconds.
var targetTgid uint32
var unitNs uint64 = 1

//fentrygen:map max=102400
var starts runtime.Hash[runtime.U32, runtime.U64] // thread -> entry time

//fentrygen:map slots=25
var hist runtime.Log2Hist

// Run attaches both probes to the function asked for (Options.Retarget):
// vfs_read only stands in for it. Unlike the original, the exit takes the
// entry time out of the map, so a return never pairs with a stale entry.
//
//fentry:vfs_read args=
func onEntry(p *OnEntry) {
	if targetTgid != 0 {
		p.FilterTgid(targetTgid)
	}
	starts.Update(p, runtime.TidValue(), runtime.KtimeNs())
}

//fexit:vfs_read args=
func onExit(p *OnExit) {
	now := runtime.Let(p, runtime.KtimeNs())
	starts.Take(p, runtime.TidValue(), func(start runtime.U64) {
		hist.Record(p, now.SubV(start).Div(unitNs))
	})
}
