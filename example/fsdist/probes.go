// Package fsdist shows the latency of ext4's file operations as log2
// histograms, one per operation: read, write, open, fsync and getattr.
// It is a port of bcc's libbpf-tools fsdist (ext4dist).
package fsdist

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// The operations, numbered as fsdist.h numbers them.
const (
	Read uint32 = iota
	Write
	Open
	Fsync
	Getattr
)

// Set by Run before loading: the process to trace (0: all) and the unit
// latencies are counted in, in nanoseconds.
var targetTgid uint32
var unitNs uint64 = 1000

var starts runtime.Hash[runtime.U32, runtime.U64] // thread -> entry time

//fentrygen:map slots=32 max=5
var hists runtime.Log2HistBy[runtime.U32] // operation -> histogram

func entry(p *runtime.Probe) {
	if targetTgid != 0 {
		p.FilterTgid(targetTgid)
	}
	starts.Update(p, runtime.TidValue(), runtime.KtimeNs())
}

func exit(p *runtime.Probe, op uint32) {
	now := runtime.Let(p, runtime.KtimeNs())
	starts.Take(p, runtime.TidValue(), func(start runtime.U64) {
		hists.Record(p, runtime.Uint32(op), now.SubV(start).Div(unitNs))
	})
}

//fentry:ext4_file_read_iter args=
func onRead(p *OnRead) { entry(p.Probe) }

//fexit:ext4_file_read_iter args=
func onReadExit(p *OnReadExit) { exit(p.Probe, Read) }

//fentry:ext4_file_write_iter args=
func onWrite(p *OnWrite) { entry(p.Probe) }

//fexit:ext4_file_write_iter args=
func onWriteExit(p *OnWriteExit) { exit(p.Probe, Write) }

//fentry:ext4_file_open args=
func onOpen(p *OnOpen) { entry(p.Probe) }

//fexit:ext4_file_open args=
func onOpenExit(p *OnOpenExit) { exit(p.Probe, Open) }

//fentry:ext4_sync_file args=
func onFsync(p *OnFsync) { entry(p.Probe) }

//fexit:ext4_sync_file args=
func onFsyncExit(p *OnFsyncExit) { exit(p.Probe, Fsync) }

//fentry:ext4_file_getattr args=
func onGetattr(p *OnGetattr) { entry(p.Probe) }

//fexit:ext4_file_getattr args=
func onGetattrExit(p *OnGetattrExit) { exit(p.Probe, Getattr) }
