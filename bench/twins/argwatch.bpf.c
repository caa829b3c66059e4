// C twin of example/argwatch (bench/insns_test.go).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 only_pid = 0;

struct mmap_event { __u64 len, prot, flags, pgoff; };
struct uid_event { __u32 kuid, ret; };

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } mmaps SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } uids SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } mmaps_lost SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } uids_lost SEC(".maps");

static __always_inline void output(void *ring, void *lost, void *data, __u64 size)
{
	if (bpf_ringbuf_output(ring, data, size, 0)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

SEC("fentry/do_mmap")
int BPF_PROG(on_mmap, struct file *file, unsigned long addr, unsigned long len, unsigned long prot,
	     unsigned long flags, vm_flags_t vm_flags, unsigned long pgoff)
{
	if (only_pid && (bpf_get_current_pid_tgid() >> 32) != only_pid)
		return 0;
	struct mmap_event e = {};
	e.len = len;
	e.prot = prot;
	e.flags = flags;
	e.pgoff = pgoff;
	output(&mmaps, &mmaps_lost, &e, sizeof(e));
	return 0;
}

// BPF_PROG cannot take a struct by value (kuid_t): the raw ctx slots.
SEC("fexit/from_kuid_munged")
int on_uid(unsigned long long *ctx)
{
	if (only_pid && (bpf_get_current_pid_tgid() >> 32) != only_pid)
		return 0;
	struct uid_event e = {};
	e.kuid = (__u32)ctx[1];
	e.ret = (__u32)ctx[2];
	output(&uids, &uids_lost, &e, sizeof(e));
	return 0;
}
