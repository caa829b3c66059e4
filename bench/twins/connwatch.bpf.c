// C twin of example/connwatch: the same logic written for clang and
// libbpf, to compare instruction counts (bench/insns_test.go).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 only_pid = 0;
const volatile __u16 denied_port = 0;

struct connect_event {
	__u64 ts;
	__u32 pid;
	__u16 family;
	__u16 dport;
	__u32 daddr;
	char comm[16];
};

struct connect_result {
	__u32 pid;
	__s32 ret;
};

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } results SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } events_lost SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } results_lost SEC(".maps");

// output sends an event and counts what does not fit, as fentrygen's
// events do.
static __always_inline void output(void *ring, void *lost, void *data, __u64 size)
{
	if (bpf_ringbuf_output(ring, data, size, 0)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

SEC("fentry/tcp_v4_connect")
int BPF_PROG(on_connect, struct sock *sk, struct sockaddr *uaddr)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (only_pid && pid != only_pid)
		return 0;
	// uaddr is untyped for the verifier: fields are read with CO-RE reads,
	// relocated like fentrygen's (a copy of the whole struct would not be).
	struct sockaddr_in *sin = (struct sockaddr_in *)uaddr;
	struct connect_event e = {};
	e.ts = bpf_ktime_get_ns();
	e.pid = pid;
	e.family = sk->__sk_common.skc_family;
	e.dport = BPF_CORE_READ(sin, sin_port);
	e.daddr = BPF_CORE_READ(sin, sin_addr.s_addr);
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	output(&events, &events_lost, &e, sizeof(e));
	return 0;
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(on_connect_exit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (only_pid && pid != only_pid)
		return 0;
	struct connect_result r = {};
	r.pid = pid;
	r.ret = ret;
	output(&results, &results_lost, &r, sizeof(r));
	return 0;
}

SEC("fmod_ret/security_socket_connect")
int BPF_PROG(deny_connect, struct socket *sock, struct sockaddr *address)
{
	if (!denied_port)
		return 0;
	if (sock->sk->__sk_common.skc_family != 2)
		return 0;
	if (BPF_CORE_READ((struct sockaddr_in *)address, sin_port) == __builtin_bswap16(denied_port))
		return -1;
	return 0;
}
