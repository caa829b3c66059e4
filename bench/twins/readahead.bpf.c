// C twin of example/readahead's onAddEntry and onAdd (bench/insns_test.go):
// the original's page_cache_alloc_ret counts an allocation; the port counts
// a folio's pages once filemap_add_folio put it in the page cache (the
// mapping's page count before and after, kept in the thread's window), so
// it checks the return value.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct window {
	__u64 before;
};

struct birth {
	__u64 ts;
	__s64 pages;
};

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, __u32); __type(value, struct window); } in_readahead SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, __u64); __type(value, struct birth); } births SEC(".maps");

__s64 unused = 0;
__s64 total = 0;

SEC("fentry/filemap_add_folio")
int BPF_PROG(on_add_entry, struct address_space *mapping)
{
	__u32 tid = bpf_get_current_pid_tgid();
	struct window *w = bpf_map_lookup_elem(&in_readahead, &tid);
	if (w)
		w->before = mapping->nrpages;
	return 0;
}

SEC("fexit/filemap_add_folio")
int BPF_PROG(on_add, struct address_space *mapping, struct folio *folio, unsigned long index, gfp_t gfp, int ret)
{
	if (ret != 0)
		return 0;
	__u32 tid = bpf_get_current_pid_tgid();
	struct window *w = bpf_map_lookup_elem(&in_readahead, &tid);
	if (!w)
		return 0;
	__s64 pages = mapping->nrpages - w->before;
	struct birth b = { .ts = bpf_ktime_get_ns(), .pages = pages };
	__u64 key = (__u64)folio;
	bpf_map_update_elem(&births, &key, &b, BPF_ANY);
	__sync_fetch_and_add(&unused, pages);
	__sync_fetch_and_add(&total, pages);
	return 0;
}
