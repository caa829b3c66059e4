// Package fsslower traces ext4 file operations (read, write, open, fsync)
// slower than a threshold, one event each, with the file's name. It is a
// port of bcc's libbpf-tools fsslower (ext4slower).
package fsslower

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// The operations, numbered as fsslower.h numbers them.
const (
	Read uint32 = iota
	Write
	Open
	Fsync
)

// Set by Run before loading: the process to trace (0: all), and the
// latency an operation must exceed to be reported.
var targetTgid uint32
var minLatNs uint64

// Event is one operation slower than the threshold.
//
//fentrygen:event
type Event struct {
	DeltaUs, EndNs uint64
	Offset, Size   int64
	Pid, Op        uint32
	File           [32]byte
	Task           [16]byte
}

// Start is what an operation's entry leaves for its exit.
type Start struct {
	Ts     uint64
	Offset int64
}

//fentrygen:map max=8192
var starts runtime.Hash[runtime.U32, StartView] // thread -> start

func entry(p *runtime.Probe, offset runtime.S64) {
	if targetTgid != 0 {
		p.FilterTgid(targetTgid)
	}
	s := NewStartView(p)
	s.SetTs(runtime.KtimeNs())
	s.SetOffset(offset)
	starts.Update(p, runtime.TidValue(), s)
}

func exit(p *runtime.Probe, op uint32, size runtime.S64, file File) {
	now := runtime.Let(p, runtime.KtimeNs())
	starts.Take(p, runtime.TidValue(), func(s StartView) {
		delta := now.SubV(s.Ts())
		p.If(delta.Le(minLatNs), p.Exit)
		e := NewEventView(p)
		e.SetDeltaUs(delta.Div(1000))
		e.SetEndNs(now)
		e.SetOffset(s.Offset())
		e.SetSize(size)
		e.SetPid(runtime.TgidValue())
		e.SetOp(runtime.Uint32(op))
		e.SetFileFromString(file.FPath().Dentry().DName().Name())
		e.SetTaskFromCurrent()
		e.Output()
	})
}

//fentry:ext4_file_read_iter args=iocb
func onRead(p *OnRead) { entry(p.Probe, p.Iocb.KiPos()) }

//fexit:ext4_file_read_iter args=iocb ret
func onReadExit(p *OnReadExit) { exit(p.Probe, Read, p.Ret, p.Iocb.KiFilp()) }

//fentry:ext4_file_write_iter args=iocb
func onWrite(p *OnWrite) { entry(p.Probe, p.Iocb.KiPos()) }

//fexit:ext4_file_write_iter args=iocb ret
func onWriteExit(p *OnWriteExit) { exit(p.Probe, Write, p.Ret, p.Iocb.KiFilp()) }

//fentry:ext4_file_open args=
func onOpen(p *OnOpen) { entry(p.Probe, runtime.Int64(0)) }

//fexit:ext4_file_open args=filp
func onOpenExit(p *OnOpenExit) { exit(p.Probe, Open, runtime.Int64(0), p.Filp) }

//fentry:ext4_sync_file args=start
func onFsync(p *OnFsync) { entry(p.Probe, p.Start) }

//fexit:ext4_sync_file args=file,start,end
func onFsyncExit(p *OnFsyncExit) { exit(p.Probe, Fsync, p.End.SubV(p.Start), p.File) }
