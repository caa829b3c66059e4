// Package vfscount counts VFS calls by function, like libbpf-tools'
// vfsstat, with one probe on every function it counts: one program on
// a tracing multi-link where the kernel has them (Linux 7), one link per
// function elsewhere, the counters keyed by the function's position in
// the list the probe was attached to.
package vfscount

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// pid and tid, when not 0, are the only process and thread counted: set
// by LoadFor before Load builds the probe.
var pid, tid uint32

//fentrygen:map max=64
var calls runtime.Hash[runtime.U32, runtime.U64]

//fentrygen:map max=64
var ips runtime.Hash[runtime.U32, runtime.U64]

// onVfs counts the calls of each function. fsync(2) reaches vfs_fsync
// or, where that is inlined into do_fsync (6.1, 6.12), vfs_fsync_range.
//
//fentry:vfs_read,vfs_write,vfs_open,vfs_fsync,vfs_fsync_range,vfs_create,vfs_unlink,vfs_mkdir,vfs_rmdir args=
func onVfs(p *OnVfs) {
	if pid != 0 {
		p.FilterTgid(pid)
	}
	if tid != 0 {
		p.FilterTid(tid)
	}
	fn := runtime.Let(p, p.FuncIndex())
	calls.Add(p, fn, runtime.Uint64(1))
	ips.Update(p, fn, p.FuncIP())
}
