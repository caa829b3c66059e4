// Package cachestat counts page cache hits, misses and dirtied buffers
// system-wide, with the page cache's size. It is a port of bcc's
// libbpf-tools cachestat, with the hooks of folio kernels: the original's
// account_page_dirtied (and its rename folio_account_dirtied) is gone
// (inlined) in Linux 6.1 and 6.12, and its add_to_page_cache_lru and
// mark_page_accessed are wrappers few callers use any more.
package cachestat

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Stats are cachestat.bpf.c's counters, cumulative: Total counts accesses
// less buffers dirtied, Misses pages added to the cache less pages
// dirtied, Mbd buffers dirtied.
type Stats struct {
	Total, Misses int64
	Mbd           uint64
}

var stats runtime.Global[StatsView]

// A folio added to the page cache (add_to_page_cache_lru's folio): one
// page but on filesystems with large folios, counted once as the
// original counts it.
//
//fentry:filemap_add_folio args=
func onAdd(p *OnAdd) { stats.Get(p).AddMisses(runtime.Int64(1)) }

// A folio accessed (mark_page_accessed's folio), once per run of reads
// inside it.
//
//fentry:folio_mark_accessed args=
func onAccess(p *OnAccess) { stats.Get(p).AddTotal(runtime.Int64(1)) }

// A page dirtied, as account_page_dirtied counted it: the tracepoint in
// folio_account_dirtied, which is inlined into __folio_mark_dirty.
//
// tp_btf:writeback_dirty_folio args=
func onDirty(p *OnDirty) { stats.Get(p).AddMisses(runtime.Int64(-1)) }

//fentry:mark_buffer_dirty args=
func onBufferDirty(p *OnBufferDirty) {
	s := stats.Get(p)
	s.AddTotal(runtime.Int64(-1))
	s.AddMbd(runtime.Uint64(1))
}
