// Package vfsstat counts VFS calls system-wide: reads, writes, fsyncs,
// opens and creates. It is a port of bcc's libbpf-tools vfsstat.
package vfsstat

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Stats are the calls counted since the probes were loaded.
type Stats struct {
	Read, Write, Fsync, Open, Create uint64
}

var stats runtime.Global[StatsView]

//fentry:vfs_read args=
func onRead(p *OnRead) { stats.Get(p).AddRead(runtime.Uint64(1)) }

//fentry:vfs_write args=
func onWrite(p *OnWrite) { stats.Get(p).AddWrite(runtime.Uint64(1)) }

//fentry:vfs_fsync args=
func onFsync(p *OnFsync) { stats.Get(p).AddFsync(runtime.Uint64(1)) }

//fentry:vfs_open args=
func onOpen(p *OnOpen) { stats.Get(p).AddOpen(runtime.Uint64(1)) }

//fentry:vfs_create args=
func onCreate(p *OnCreate) { stats.Get(p).AddCreate(runtime.Uint64(1)) }
