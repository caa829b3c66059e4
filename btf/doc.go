// Package btf answers the questions fentrygen asks of kernel BTF: which
// function is this, which ctx slots do its arguments occupy, can it be traced
// and how, where does a member path lead, and which small snapshot of types
// reproduces those answers elsewhere.
//
// Every query takes a *btf.Spec from github.com/cilium/ebpf/btf. This package
// never reads the running kernel by itself: the caller picks the source with
// [LoadFile], [LoadBytes], [LoadKernel] or [Embedded]. All but LoadKernel
// [Check] what they read, refusing BTF no kernel would load (types that
// contain themselves, names that are not C identifiers); the queries are
// safe on any spec all the same: they end, and hand out no such names.
package btf

// The embedded snapshot and the test snapshot are cut from a kernel's BTF by
// `fentrygen snapshot`; regenerate them (on a machine with kernel BTF) with
// `go generate ./btf`.
//
//go:generate go run ../cmd/fentrygen snapshot -btf /sys/kernel/btf/vmlinux -types sockaddr_in,sockaddr_in6 -tracepoints sched_process_exec -o default.btf tcp_v4_connect tcp_v6_connect tcp_sendmsg tcp_close security_socket_connect security_file_open do_mmap from_kuid_munged vfs_read do_unlinkat migrate_disable
//go:generate cp default.btf ../testdata/btf/vmlinux-min.btf
