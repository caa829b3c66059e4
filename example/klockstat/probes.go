// Package klockstat times the kernel's mutexes and rw-semaphores: how long
// callers wait to acquire them and how long they hold them, by the stack
// that took the lock (or by thread). It is a port of bcc's libbpf-tools
// klockstat (its fentry and fexit path).
package klockstat

import "github.com/fentrygen/fentrygen/runtime"

//go:generate go tool fentrygen

// Set by Run before loading: the process and thread to trace (0: all),
// the lock (0: all), and whether stats are kept by thread rather than by
// stack.
var targetTgid, targetTid uint32
var targetLock uint64
var perThread bool

// TaskLock is a task taking a lock: one at a time, locks do not nest on
// themselves.
type TaskLock struct {
	TaskID, LockPtr uint64 // pid_tgid, lock address
}

// Holder is an acquisition in flight, from the lock call to the unlock.
type Holder struct {
	TaskID, LockPtr, TryAt, AcqAt uint64
	StackID                       int32
	_                             [4]byte
}

// LockStat is what a stack (or thread) did with its locks: waits to
// acquire, then holds, each counted, summed and the longest kept with
// who and which lock.
type LockStat struct {
	AcqCount, AcqTotalTime, AcqMaxTime, AcqMaxID, AcqMaxLockPtr uint64
	AcqMaxComm                                                  [16]byte
	HldCount, HldTotalTime, HldMaxTime, HldMaxID, HldMaxLockPtr uint64
	HldMaxComm                                                  [16]byte
}

//fentrygen:map max=102400
var stacks runtime.StackTrace

//fentrygen:map max=102400
var holders runtime.Hash[TaskLockView, HolderView]

//fentrygen:map max=102400
var stats runtime.Hash[runtime.U32, LockStatView] // stack id, or tid -> stats

// traced ends the program unless the lock and the task are traced.
func traced(p *runtime.Probe, lock runtime.U64) {
	if targetLock != 0 {
		p.If(lock.Ne(targetLock), p.Exit)
	}
	if targetTgid != 0 {
		p.FilterTgid(targetTgid)
	}
	if targetTid != 0 {
		p.FilterTid(targetTid)
	}
}

func taskLock(p *runtime.Probe, task, lock runtime.U64) TaskLockView {
	k := NewTaskLockView(p)
	k.SetTaskID(task)
	k.SetLockPtr(lock)
	return k
}

// contended: a lock call starts; the caller's stack is filed. Four frames
// are skipped, as in the original: this program, the trampoline, the lock
// function and, on 6.1 and 6.12, its caller too, so rows name the caller's
// caller (vfs_write for pipe_write's mutex). Kept for the same rows.
func contended(p *runtime.Probe, lock runtime.U64) {
	traced(p, lock)
	task := runtime.Let(p, runtime.PidTgidValue())
	id := runtime.Let(p, stacks.ID(p, 4|runtime.StackFastCmp))
	p.If(id.Lt(0), p.Exit)
	h := NewHolderView(p)
	h.SetTaskID(task)
	h.SetLockPtr(lock)
	h.SetStackID(id.S32())
	h.SetTryAt(runtime.KtimeNs())
	holders.Update(p, taskLock(p, task, lock), h)
}

// aborted: the lock call failed (a signal).
func aborted(p *runtime.Probe, lock runtime.U64) {
	traced(p, lock)
	holders.Delete(p, taskLock(p, runtime.PidTgidValue(), lock))
}

// acquired: the lock call returned with the lock.
func acquired(p *runtime.Probe, lock runtime.U64) {
	traced(p, lock)
	holders.Lookup(p, taskLock(p, runtime.PidTgidValue(), lock), func(h HolderView) { h.SetAcqAt(runtime.KtimeNs()) })
}

// released: the unlock; the wait and the hold are accounted.
func released(p *runtime.Probe, lock runtime.U64) {
	traced(p, lock)
	k := taskLock(p, runtime.PidTgidValue(), lock)
	holders.Lookup(p, k, func(h HolderView) {
		now := runtime.Let(p, runtime.KtimeNs())
		key := h.StackID().U32()
		if perThread {
			key = h.TaskID().U32()
		}
		stats.LookupOrInit(p, key, func(s LockStatView) {
			if perThread {
				p.If(s.AcqCount().Zero(), s.SetAcqMaxCommFromCurrent)
			}
			wait := runtime.Let(p, h.AcqAt().SubV(h.TryAt()))
			s.AddAcqCount(runtime.Uint64(1))
			s.AddAcqTotalTime(wait)
			p.If(wait.GtV(s.AcqMaxTime()), func() {
				s.SetAcqMaxTime(wait)
				s.SetAcqMaxID(h.TaskID())
				s.SetAcqMaxLockPtr(h.LockPtr())
				if !perThread {
					s.SetAcqMaxCommFromCurrent()
				}
			})
			hold := runtime.Let(p, now.SubV(h.AcqAt()))
			s.AddHldCount(runtime.Uint64(1))
			s.AddHldTotalTime(hold)
			p.If(hold.GtV(s.HldMaxTime()), func() {
				s.SetHldMaxTime(hold)
				s.SetHldMaxID(h.TaskID())
				s.SetHldMaxLockPtr(h.LockPtr())
				if !perThread {
					s.SetHldMaxCommFromCurrent()
				}
			})
		})
		holders.Delete(p, k)
	})
}

//fentry:mutex_lock args=lock
func onMutexLock(p *OnMutexLock) { contended(p.Probe, p.Lock.Ptr().Value()) }

//fexit:mutex_lock args=lock
func onMutexLockExit(p *OnMutexLockExit) { acquired(p.Probe, p.Lock.Ptr().Value()) }

//fexit:mutex_trylock args=lock ret
func onMutexTryExit(p *OnMutexTryExit) {
	p.If(p.Ret.NonZero(), func() {
		contended(p.Probe, p.Lock.Ptr().Value())
		acquired(p.Probe, p.Lock.Ptr().Value())
	})
}

//fentry:mutex_lock_interruptible args=lock
func onMutexIntr(p *OnMutexIntr) {
	contended(p.Probe, p.Lock.Ptr().Value())
}

//fexit:mutex_lock_interruptible args=lock ret
func onMutexIntrExit(p *OnMutexIntrExit) {
	p.IfElse(p.Ret.NonZero(), func() { aborted(p.Probe, p.Lock.Ptr().Value()) }, func() { acquired(p.Probe, p.Lock.Ptr().Value()) })
}

//fentry:mutex_lock_killable args=lock
func onMutexKill(p *OnMutexKill) { contended(p.Probe, p.Lock.Ptr().Value()) }

//fexit:mutex_lock_killable args=lock ret
func onMutexKillExit(p *OnMutexKillExit) {
	p.IfElse(p.Ret.NonZero(), func() { aborted(p.Probe, p.Lock.Ptr().Value()) }, func() { acquired(p.Probe, p.Lock.Ptr().Value()) })
}

//fentry:mutex_unlock args=lock
func onMutexUnlock(p *OnMutexUnlock) { released(p.Probe, p.Lock.Ptr().Value()) }

//fentry:down_read args=sem
func onDownRead(p *OnDownRead) { contended(p.Probe, p.Sem.Ptr().Value()) }

//fexit:down_read args=sem
func onDownReadExit(p *OnDownReadExit) { acquired(p.Probe, p.Sem.Ptr().Value()) }

//fexit:down_read_trylock args=sem ret
func onReadTryExit(p *OnReadTryExit) {
	p.If(p.Ret.Eq(1), func() {
		contended(p.Probe, p.Sem.Ptr().Value())
		acquired(p.Probe, p.Sem.Ptr().Value())
	})
}

//fentry:down_read_interruptible args=sem
func onReadIntr(p *OnReadIntr) {
	contended(p.Probe, p.Sem.Ptr().Value())
}

//fexit:down_read_interruptible args=sem ret
func onReadIntrExit(p *OnReadIntrExit) {
	p.IfElse(p.Ret.NonZero(), func() { aborted(p.Probe, p.Sem.Ptr().Value()) }, func() { acquired(p.Probe, p.Sem.Ptr().Value()) })
}

//fentry:down_read_killable args=sem
func onReadKill(p *OnReadKill) { contended(p.Probe, p.Sem.Ptr().Value()) }

//fexit:down_read_killable args=sem ret
func onReadKillExit(p *OnReadKillExit) {
	p.IfElse(p.Ret.NonZero(), func() { aborted(p.Probe, p.Sem.Ptr().Value()) }, func() { acquired(p.Probe, p.Sem.Ptr().Value()) })
}

//fentry:up_read args=sem
func onUpRead(p *OnUpRead) { released(p.Probe, p.Sem.Ptr().Value()) }

//fentry:down_write args=sem
func onDownWrite(p *OnDownWrite) { contended(p.Probe, p.Sem.Ptr().Value()) }

//fexit:down_write args=sem
func onDownWriteExit(p *OnDownWriteExit) { acquired(p.Probe, p.Sem.Ptr().Value()) }

//fexit:down_write_trylock args=sem ret
func onWriteTryExit(p *OnWriteTryExit) {
	p.If(p.Ret.Eq(1), func() {
		contended(p.Probe, p.Sem.Ptr().Value())
		acquired(p.Probe, p.Sem.Ptr().Value())
	})
}

//fentry:down_write_killable args=sem
func onWriteKill(p *OnWriteKill) { contended(p.Probe, p.Sem.Ptr().Value()) }

//fexit:down_write_killable args=sem ret
func onWriteKillExit(p *OnWriteKillExit) {
	p.IfElse(p.Ret.NonZero(), func() { aborted(p.Probe, p.Sem.Ptr().Value()) }, func() { acquired(p.Probe, p.Sem.Ptr().Value()) })
}

//fentry:up_write args=sem
func onUpWrite(p *OnUpWrite) { released(p.Probe, p.Sem.Ptr().Value()) }
