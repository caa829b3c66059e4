// C twin of example/readlat (bench/insns_test.go).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define SLOTS 27

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, __u32); __type(value, __u64); } start SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64[SLOTS]); } lat SEC(".maps");

static __always_inline __u64 log2l(__u64 v)
{
	__u32 hi = v >> 32, w, r, shift;
	int add = 0;
	if (hi) {
		w = hi;
		add = 32;
	} else {
		w = v;
	}
	r = (w > 0xFFFF) << 4; w >>= r;
	shift = (w > 0xFF) << 3; w >>= shift; r |= shift;
	shift = (w > 0xF) << 2; w >>= shift; r |= shift;
	shift = (w > 0x3) << 1; w >>= shift; r |= shift;
	r |= (w >> 1);
	return r + add;
}

SEC("fentry/vfs_read")
int BPF_PROG(on_entry)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("fexit/vfs_read")
int BPF_PROG(on_exit)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 *tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	__u64 ts = *tsp;
	bpf_map_delete_elem(&start, &tid);
	__u64 slot = log2l((bpf_ktime_get_ns() - ts) / 1000);
	if (slot >= SLOTS)
		slot = SLOTS - 1;
	__u32 zero = 0;
	__u64 *slots = bpf_map_lookup_elem(&lat, &zero);
	if (slots)
		__sync_fetch_and_add(&slots[slot], 1);
	return 0;
}
