// Package readahead shows how well the page cache's read-ahead guesses:
// how many of the pages it read were never accessed, and a histogram of
// the time from a page's read-ahead to its first access. It is a port of
// bcc's libbpf-tools readahead, with the hooks of folio kernels: the
// original's do_page_cache_ra and __page_cache_alloc are gone (inlined) in
// Linux 6.1 and 6.12, and mark_page_accessed is no longer on the read path.
package readahead

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Counts are pages read ahead (Total) and those not accessed yet (Unused).
type Counts struct {
	Unused, Total int64
}

var counts runtime.Global[CountsView]

//fentrygen:map slots=20
var hist runtime.Log2Hist // milliseconds from read-ahead to first access

var inReadahead runtime.Hash[runtime.U32, runtime.U64] // thread -> 1 in a window

var births runtime.Hash[runtime.U64, runtime.U64] // folio -> when read ahead

// The read-ahead window: page_cache_ra_unbounded reads order-0 folios (the
// inlined do_page_cache_ra calls it, and so does page_cache_ra_order when a
// mapping has no large folios); page_cache_ra_order reads large ones.
// Either calls the other last, so an inner exit ends the window early for
// nothing.
//
//fentry:page_cache_ra_unbounded args=
func onRa(p *OnRa) { inReadahead.Update(p, runtime.TidValue(), runtime.Uint64(1)) }

//fexit:page_cache_ra_unbounded args=
func onRaExit(p *OnRaExit) { inReadahead.Delete(p, runtime.TidValue()) }

//fentry:page_cache_ra_order args=
func onRaOrder(p *OnRaOrder) { inReadahead.Update(p, runtime.TidValue(), runtime.Uint64(1)) }

//fexit:page_cache_ra_order args=
func onRaOrderExit(p *OnRaOrderExit) { inReadahead.Delete(p, runtime.TidValue()) }

// A folio the window put in the page cache. The original counts
// allocations instead (__page_cache_alloc, now filemap_alloc_folio or
// filemap_alloc_folio_noprof by kernel), including folios freed at once
// when another task cached the page first; filemap_add_folio has one name
// everywhere. A folio counts as one page: read-ahead folios are order 0
// but on filesystems with large folios (xfs; ext4 from Linux 6.16).
//
//fexit:filemap_add_folio args=folio ret
func onAdd(p *OnAdd) {
	p.If(p.Ret.Ne(0), p.Exit)
	inReadahead.Lookup(p, runtime.TidValue(), func(runtime.U64) {
		births.Update(p, p.Folio.Ptr().Value(), runtime.KtimeNs())
		c := counts.Get(p)
		c.AddUnused(runtime.Int64(1))
		c.AddTotal(runtime.Int64(1))
	})
}

//fentry:folio_mark_accessed args=folio
func onAccess(p *OnAccess) {
	now := runtime.Let(p, runtime.KtimeNs())
	births.Take(p, p.Folio.Ptr().Value(), func(ts runtime.U64) {
		delta := now.SubV(ts)
		p.If(delta.S64().Ge(0), func() { hist.Record(p, delta.Div(1000000)) })
		counts.Get(p).AddUnused(runtime.Int64(-1))
	})
}
