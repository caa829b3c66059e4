// Package runtime is what fentrygen's generated code calls, and what a user
// can call by hand, to build fentry, fexit and fmod_ret programs.
//
// The low level reads like cilium/ebpf's asm package: one small function per
// idea, each documented in pseudo-C, returning asm instructions. The kernel
// ABI it encodes (see shared/DESIGN.md): on entry r1 is ctx, an array of u64
// slots; argument i is ((u64 *)ctx)[slot(i)]; fexit's return value is
// ctx[nr_slots]; r6-r9 survive helper calls and r10 is the read-only frame
// pointer.
//
// The high level, [Program], keeps ctx in r6, hands out [Scalar] and [Ptr]
// values that load themselves on demand, and carries member paths, never
// byte offsets: [Program.Spec] resolves them against the BTF of the kernel the
// program is loaded on. [Load] loads and attaches programs and their maps.
package runtime
