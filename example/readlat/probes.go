// Package readlat is the README's example: a histogram of vfs_read
// latency, in microseconds.
package readlat

//go:generate go tool fentrygen

import "github.com/fentrygen/fentrygen/runtime"

var (
	start runtime.Hash[runtime.U32, runtime.U64] // thread -> entry time
	lat   runtime.Log2Hist                       // microseconds
)

//fentry:vfs_read args=
func onEntry(p *OnEntry) { start.Update(p, runtime.TidValue(), runtime.KtimeNs()) }

//fexit:vfs_read args=
func onExit(p *OnExit) {
	start.Take(p, runtime.TidValue(), func(ts runtime.U64) {
		lat.Record(p, runtime.KtimeNs().SubV(ts).Div(1000))
	})
}
