// Package loopwatch traces the loop block driver, which Debian builds as a
// kernel module (loop.ko): probes on its functions are typed from the
// module's own BTF (/sys/kernel/btf/loop), and the struct it defines,
// loop_device, is relocated against the module's BTF where the programs
// load.
//
// onControl names the module (//fentry:loop:loop_control_ioctl) and reads
// the ioctls on /dev/loop-control, with the access mode of the file they
// came through (struct file is vmlinux's). onStatus names the function
// alone (//fexit:loop_get_status): vmlinux has none, so fentrygen finds it
// in loop's BTF; it reads the device's number, state and gendisk behind
// LOOP_GET_STATUS ioctls, and what they return.
//
// The pinned fentrygen.btf is a snapshot of Debian's 6.12 kernel with
// loop's BTF, so that generating needs no loaded module:
//
//	go run ./internal/cmd/kernelbtf -kernel 6.12 -o /tmp/btf612 loop
//	go run ./cmd/fentrygen snapshot -btf /tmp/btf612/vmlinux -o example/loopwatch/fentrygen.btf loop:loop_control_ioctl loop:loop_get_status
package loopwatch

//go:generate go tool fentrygen

// OnlyPid, when not zero, limits the probes to one process.
var OnlyPid uint32

// Control is one ioctl on /dev/loop-control (LOOP_CTL_ADD, _REMOVE,
// _GET_FREE).
//
//fentrygen:event
type Control struct {
	Cmd   uint32
	Flags uint32 // the file's f_flags: O_RDWR, O_RDONLY...
	Parm  uint64 // the device number for ADD and REMOVE
}

//fentry:loop:loop_control_ioctl args=file,cmd,parm
func onControl(p *OnControl) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	e := NewControlView(p)
	e.SetCmd(p.Cmd)
	e.SetFlags(p.File.FFlags())
	e.SetParm(p.Parm)
	e.Output()
}

// Status is one loop_get_status: the LOOP_GET_STATUS and LOOP_GET_STATUS64
// ioctls on /dev/loopN.
//
//fentrygen:event
type Status struct {
	Number int32  // lo->lo_number: the N of /dev/loopN
	State  int32  // lo->lo_state: Lo_unbound 0, Lo_bound 1...
	Minor  uint32 // lo->lo_disk->first_minor
	Ret    int32  // 0, or -ENXIO when no file is bound
}

//fexit:loop_get_status args=lo ret
func onStatus(p *OnStatus) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	e := NewStatusView(p)
	e.SetNumber(p.Lo.LoNumber())
	e.SetState(p.Lo.LoState())
	e.SetMinor(p.Lo.LoDisk().FirstMinor().U32())
	e.SetRet(p.Ret)
	e.Output()
}
