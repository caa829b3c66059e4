// Package btf answers the questions fentrygen asks of kernel BTF: which
// function is this, which ctx slots do its arguments occupy, can it be traced
// and how, where does a member path lead, and which small snapshot of types
// reproduces those answers elsewhere.
//
// Every query takes a *btf.Spec from github.com/cilium/ebpf/btf, or [Types]:
// a view of a kernel's BTF with its modules' ([Modules]), whose split BTF
// builds on vmlinux's. This package never reads the running kernel by itself: the caller picks the source with
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
//
// The module snapshot keeps functions of the loop and dummy modules of
// Debian's 6.12 kernel, whose BTF internal/cmd/kernelbtf writes out (it
// downloads the kernel into the cache when missing).
//
//go:generate go run ../internal/cmd/kernelbtf -kernel 6.12 -o ../testdata/btf/.kernel-6.12 loop dummy
//go:generate go run ../cmd/fentrygen snapshot -btf ../testdata/btf/.kernel-6.12/vmlinux -o ../testdata/btf/modules-min.btf loop:loop_control_ioctl loop:loop_get_status loop:lo_ioctl dummy:dummy_xmit vfs_read tcp_v4_connect
//go:generate rm -r ../testdata/btf/.kernel-6.12
//
// A kernel with loop built in (as the 6.18 it was cut from has it):
//
//go:generate go run ../cmd/fentrygen snapshot -btf /sys/kernel/btf/vmlinux -o ../testdata/btf/loop-builtin.btf loop_control_ioctl
