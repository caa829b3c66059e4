package runtime

import (
	"bytes"
	encbin "encoding/binary"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// The few bpf(2) calls cilium/ebpf v0.22.0 cannot make for us: loading a
// program whose attach type it does not know (fsession) with the BTF id of
// its target, which it would leave 0; creating a tracing multi-link, whose
// ids and cookies its link_create attr cannot carry. Layouts are uapi linux/bpf.h's
// (Linux 7.3); the kernel takes a shorter attr than its union and zeroes
// the rest.

const (
	cmdProgLoad   = 5  // BPF_PROG_LOAD
	cmdLinkCreate = 28 // BPF_LINK_CREATE

	progTypeTracing = 26 // BPF_PROG_TYPE_TRACING
)

// progLoadAttr is union bpf_attr as BPF_PROG_LOAD reads it, up to
// fd_array_cnt: 152 bytes. Pointers are unsafe.Pointer, 8 bytes on the
// 64-bit architectures with BPF trampolines, so that what they point to
// stays where it is while the kernel reads it.
type progLoadAttr struct {
	ProgType        uint32         // 0
	InsnCnt         uint32         // 4
	Insns           unsafe.Pointer // 8
	License         unsafe.Pointer // 16
	LogLevel        uint32         // 24
	LogSize         uint32         // 28
	LogBuf          unsafe.Pointer // 32
	KernVersion     uint32         // 40
	ProgFlags       uint32         // 44
	ProgName        [16]byte       // 48
	ProgIfindex     uint32         // 64
	ExpectedAttach  uint32         // 68
	ProgBtfFd       uint32         // 72
	FuncInfoRecSize uint32         // 76
	FuncInfo        unsafe.Pointer // 80
	FuncInfoCnt     uint32         // 88
	LineInfoRecSize uint32         // 92
	LineInfo        unsafe.Pointer // 96
	LineInfoCnt     uint32         // 104
	AttachBtfID     uint32         // 108
	AttachBtfObjFd  uint32         // 112 (attach_prog_fd)
	CoreReloCnt     uint32         // 116
	FdArray         unsafe.Pointer // 120
	CoreRelos       unsafe.Pointer // 128
	CoreReloRecSize uint32         // 136
	LogTrueSize     uint32         // 140
	ProgTokenFd     int32          // 144
	FdArrayCnt      uint32         // 148
}

// The kernel reads the attr at these offsets.
var _ [152]byte = [unsafe.Sizeof(progLoadAttr{})]byte{}
var _ [112]byte = [unsafe.Offsetof(progLoadAttr{}.AttachBtfObjFd)]byte{}

// gpl is the license of every program: kfuncs and most tracing helpers
// need a GPL-compatible one.
var gpl = []byte("GPL\x00")

// rawProgram is a tracing program to load with BPF_PROG_LOAD itself.
type rawProgram struct {
	Name string
	// Attach is the expected attach type; BTFID the target function's id
	// in vmlinux BTF (0 for multi programs, which the kernel gives the id
	// of bpf_multi_func).
	Attach ebpf.AttachType
	BTFID  uint32
	Flags  uint32
	// Insns are finished: maps associated, kfunc ids set.
	Insns asm.Instructions
}

// rawLoadError is a refused BPF_PROG_LOAD: the errno and, when the
// verifier wrote one, its log.
type rawLoadError struct {
	Errno unix.Errno
	Log   []string
}

func (e *rawLoadError) Error() string {
	if len(e.Log) == 0 {
		return e.Errno.Error()
	}
	return fmt.Sprintf("%v: %s", e.Errno, e.Log[len(e.Log)-1])
}

func (e *rawLoadError) Unwrap() error { return e.Errno }

// maxVerifierLog bounds the verifier log buffer of a refused load.
const maxVerifierLog = 16 << 20

// loadRaw loads prog as a BPF_PROG_TYPE_TRACING program and returns it.
// A refused load is retried with the verifier's log, whose lines the error
// carries.
func loadRaw(prog rawProgram) (*ebpf.Program, error) {
	var code bytes.Buffer
	if err := prog.Insns.Marshal(&code, encbin.LittleEndian); err != nil {
		return nil, fmt.Errorf("marshal %s: %w", prog.Name, err)
	}
	fd, err := progLoad(prog, code.Bytes(), nil)
	if err != nil && !errors.Is(err, unix.EPERM) {
		size := 1 << 16
		for {
			log := make([]byte, size)
			fd, err = progLoad(prog, code.Bytes(), log)
			if !errors.Is(err, unix.ENOSPC) || size >= maxVerifierLog {
				if err != nil {
					err = &rawLoadError{Errno: errnoOf(err), Log: logLines(log)}
				}
				break
			}
			size *= 4
		}
	}
	if err != nil {
		var rle *rawLoadError
		if !errors.As(err, &rle) {
			err = &rawLoadError{Errno: errnoOf(err)}
		}
		return nil, err
	}
	p, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return p, nil
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EINVAL
}

// logLines splits a verifier log, without its trailing NULs and empty
// lines.
func logLines(log []byte) []string {
	if i := bytes.IndexByte(log, 0); i >= 0 {
		log = log[:i]
	}
	var out []string
	for _, l := range strings.Split(string(log), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// progLoad issues BPF_PROG_LOAD, with the verifier log in log when not
// nil, and returns the new program's fd.
func progLoad(prog rawProgram, code, log []byte) (int, error) {
	attr := progLoadAttr{
		ProgType:       progTypeTracing,
		InsnCnt:        uint32(len(code) / asm.InstructionSize),
		Insns:          unsafe.Pointer(&code[0]),
		License:        unsafe.Pointer(&gpl[0]),
		ProgFlags:      prog.Flags,
		ExpectedAttach: uint32(prog.Attach),
		AttachBtfID:    prog.BTFID,
	}
	copy(attr.ProgName[:15], KernelName(prog.Name))
	if log != nil {
		attr.LogLevel = 1
		attr.LogSize = uint32(len(log))
		attr.LogBuf = unsafe.Pointer(&log[0])
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmdProgLoad, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	goruntime.KeepAlive(&attr)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// linkCreateMultiAttr is union bpf_attr as BPF_LINK_CREATE reads it for a
// tracing multi-link: 40 bytes. target_fd and flags must be 0.
type linkCreateMultiAttr struct {
	ProgFd     uint32         // 0
	TargetFd   uint32         // 4
	AttachType uint32         // 8
	Flags      uint32         // 12
	Ids        unsafe.Pointer // 16: __u32[Cnt], BTF ids of the functions
	Cookies    unsafe.Pointer // 24: __u64[Cnt] or NULL
	Cnt        uint32         // 32
	_          uint32
}

var _ [40]byte = [unsafe.Sizeof(linkCreateMultiAttr{})]byte{}

// linkTracingMulti attaches prog, loaded with the multi attach type
// attach, to the functions of BTF ids ids at once (all or none), each with
// its cookie, and returns the link's fd.
func linkTracingMulti(prog *ebpf.Program, attach ebpf.AttachType, ids []uint32, cookies []uint64) (int, error) {
	if len(ids) == 0 || len(cookies) != len(ids) {
		return -1, fmt.Errorf("link %d functions with %d cookies", len(ids), len(cookies))
	}
	attr := linkCreateMultiAttr{
		ProgFd:     uint32(prog.FD()),
		AttachType: uint32(attach),
		Ids:        unsafe.Pointer(&ids[0]),
		Cookies:    unsafe.Pointer(&cookies[0]),
		Cnt:        uint32(len(ids)),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmdLinkCreate, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	goruntime.KeepAlive(&attr)
	goruntime.KeepAlive(prog)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
