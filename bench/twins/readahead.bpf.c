// C twin of example/readahead's onAdd (bench/insns_test.go): the
// original's page_cache_alloc_ret hooks an allocation; the port counts a
// folio once filemap_add_folio put it in the page cache, so it checks the
// return value first.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, __u32); __type(value, __u64); } in_readahead SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, __u64); __type(value, __u64); } birth SEC(".maps");

__s64 unused = 0;
__s64 total = 0;

SEC("fexit/filemap_add_folio")
int BPF_PROG(on_add, struct address_space *mapping, struct folio *folio, unsigned long index, gfp_t gfp, int ret)
{
	if (ret != 0)
		return 0;
	__u32 tid = bpf_get_current_pid_tgid();
	if (!bpf_map_lookup_elem(&in_readahead, &tid))
		return 0;
	__u64 ts = bpf_ktime_get_ns();
	__u64 key = (__u64)folio;
	bpf_map_update_elem(&birth, &key, &ts, BPF_ANY);
	__sync_fetch_and_add(&unused, 1);
	__sync_fetch_and_add(&total, 1);
	return 0;
}
