// Package sessionlat is funclatency on one fsession probe: it times calls
// of a kernel function and shows their latency as a log2 histogram, like
// bcc's libbpf-tools funclatency (and example/funclatency, its port on an
// fentry and an fexit probe). The entry time travels in the call's
// cookie. On kernels with fsession (Linux 7.0 and later) the stub is one
// program and one link; elsewhere it loads as an fentry and an fexit
// program sharing a map keyed by thread, with the same results.
package sessionlat

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Set by Run before loading: the process to trace (0: all) and the unit
// latencies are counted in, in nanoseconds.
var targetTgid uint32
var unitNs uint64 = 1

//fentrygen:map slots=25
var hist runtime.Log2Hist

// Run attaches the probe to the function asked for (Options.Retarget):
// vfs_read only stands in for it. A return whose call was not seen (the
// probe attached while it ran) has no cookie and is not counted.
//
//fsession:vfs_read args=
func onCall(p *OnCall) {
	if targetTgid != 0 {
		p.FilterTgid(targetTgid)
	}
	p.AtEntry(func(e *OnCallEntry) { e.SetCookie(runtime.KtimeNs()) })
	p.AtExit(func(x *OnCallExit) {
		x.If(x.Cookie.Eq(0), x.Exit)
		hist.Record(x, runtime.KtimeNs().SubV(x.Cookie).Div(unitNs))
	})
}
