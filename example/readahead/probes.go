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

// Window is a thread's read-ahead window, with the page count of the
// mapping a folio is being added to, before the add.
type Window struct{ Before uint64 }

var inReadahead runtime.Hash[runtime.U32, WindowView] // thread -> its window

// Birth is when a folio was read ahead, and its pages.
type Birth struct {
	Ts    uint64
	Pages int64
}

var births runtime.Hash[runtime.U64, BirthView] // folio -> its birth

// The read-ahead window: page_cache_ra_unbounded reads order-0 folios (the
// inlined do_page_cache_ra calls it, and so does page_cache_ra_order when a
// mapping has no large folios); page_cache_ra_order reads large ones.
// Either calls the other last, so an inner exit ends the window early for
// nothing.
//
//fentry:page_cache_ra_unbounded args=
func onRa(p *OnRa) { inReadahead.Update(p, runtime.TidValue(), NewWindowView(p)) }

//fexit:page_cache_ra_unbounded args=
func onRaExit(p *OnRaExit) { inReadahead.Delete(p, runtime.TidValue()) }

//fentry:page_cache_ra_order args=
func onRaOrder(p *OnRaOrder) { inReadahead.Update(p, runtime.TidValue(), NewWindowView(p)) }

//fexit:page_cache_ra_order args=
func onRaOrderExit(p *OnRaOrderExit) { inReadahead.Delete(p, runtime.TidValue()) }

// A folio the window put in the page cache, as many pages as it holds:
// read-ahead folios are order 0 but on filesystems with large folios (xfs;
// ext4 from Linux 6.16), and the mapping's page count grows by the folio's
// size however a kernel spells that. The original counts allocations
// instead (__page_cache_alloc, now filemap_alloc_folio or
// filemap_alloc_folio_noprof by kernel), one per folio, including folios
// freed at once when another task cached the page first;
// filemap_add_folio has one name everywhere.
//
//fentry:filemap_add_folio args=mapping
func onAddEntry(p *OnAddEntry) {
	inReadahead.Lookup(p, runtime.TidValue(), func(w WindowView) { w.SetBefore(p.Mapping.Nrpages()) })
}

//fexit:filemap_add_folio args=mapping,folio ret
func onAdd(p *OnAdd) {
	p.If(p.Ret.Ne(0), p.Exit)
	inReadahead.Lookup(p, runtime.TidValue(), func(w WindowView) {
		pages := runtime.Let(p, p.Mapping.Nrpages().SubV(w.Before()).S64())
		b := NewBirthView(p)
		b.SetTs(runtime.KtimeNs())
		b.SetPages(pages)
		births.Update(p, p.Folio.Ptr().Value(), b)
		c := counts.Get(p)
		c.AddUnused(pages)
		c.AddTotal(pages)
	})
}

//fentry:folio_mark_accessed args=folio
func onAccess(p *OnAccess) {
	now := runtime.Let(p, runtime.KtimeNs())
	births.Take(p, p.Folio.Ptr().Value(), func(b BirthView) {
		delta := now.SubV(b.Ts())
		p.If(delta.S64().Ge(0), func() { hist.RecordN(p, delta.Div(1000000), b.Pages()) })
		counts.Get(p).AddUnused(b.Pages().Neg())
	})
}
