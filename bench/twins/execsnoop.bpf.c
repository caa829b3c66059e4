// C twin of example/execsnoop (bench/insns_test.go).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 only_parent = 0;

struct exec_event {
	__u32 pid, ppid;
	char comm[16];
	char filename[128];
};

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } execs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } execs_lost SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 ppid = p->real_parent->tgid;
	if (only_parent && ppid != only_parent)
		return 0;
	struct exec_event e = {};
	e.pid = p->tgid;
	e.ppid = ppid;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_probe_read_kernel_str(e.filename, sizeof(e.filename), bprm->filename);
	if (bpf_ringbuf_output(&execs, &e, sizeof(e), 0)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&execs_lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0;
}
