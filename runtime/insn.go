package runtime

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// CtxReg is where [Program] keeps ctx: r6, callee-saved, survives helpers.
const CtxReg = asm.R6

// StackLimit is the size of a BPF program's stack.
const StackLimit = 512

// CommLen is TASK_COMM_LEN, the size of a task's comm including its NUL.
const CommLen = 16

// LoadCtx emits `dst = ((u64 *)ctx)[slot]`: the whole u64 ctx slot.
func LoadCtx(dst, ctx asm.Register, slot int) asm.Instruction {
	return asm.LoadMem(dst, ctx, int16(8*slot), asm.DWord)
}

// Narrow emits `dst = (u<size*8>)dst` or, when signed,
// `dst = (s64)(s<size*8>)dst`: a left shift then a logical or arithmetic
// right shift. Sizes of 8 bytes (or 0) emit nothing.
func Narrow(dst asm.Register, size int, signed bool) asm.Instructions {
	if size <= 0 || size >= 8 {
		return nil
	}
	shift := int32(64 - 8*size)
	right := asm.RSh
	if signed {
		right = asm.ArSh
	}
	return asm.Instructions{asm.LSh.Imm(dst, shift), right.Imm(dst, shift)}
}

// LoadArg emits `dst = ((u64 *)ctx)[slot]` narrowed to size bytes, signed or
// not, as the argument's BTF int encoding says.
func LoadArg(dst, ctx asm.Register, slot, size int, signed bool) asm.Instructions {
	return append(asm.Instructions{LoadCtx(dst, ctx, slot)}, Narrow(dst, size, signed)...)
}

// LoadRet emits `dst = ((u64 *)ctx)[nrSlots]`, narrowed: in fexit the traced
// function's return value, in fmod_ret the previous fmod_ret result.
func LoadRet(dst, ctx asm.Register, nrSlots, size int, signed bool) asm.Instructions {
	return LoadArg(dst, ctx, nrSlots, size, signed)
}

// Save pairs a ctx slot with the callee-saved register it is copied into.
type Save struct {
	Slot int
	Reg  asm.Register
}

// SaveArgs emits `reg = ((u64 *)ctx)[slot]` for each pair, so arguments
// survive helper calls. Only r6-r9 qualify: r0-r5 are clobbered by calls and
// r10 is the read-only frame pointer. ctx itself must not be a target before
// the last load from it.
func SaveArgs(ctx asm.Register, saves []Save) (asm.Instructions, error) {
	var out asm.Instructions
	used := map[asm.Register]bool{}
	for i, s := range saves {
		if s.Reg < asm.R6 || s.Reg > asm.R9 {
			return nil, fmt.Errorf("save slot %d into %s: only r6-r9 survive helper calls", s.Slot, s.Reg)
		}
		if used[s.Reg] {
			return nil, fmt.Errorf("save slot %d into %s: register already used", s.Slot, s.Reg)
		}
		if s.Reg == ctx && i != len(saves)-1 {
			return nil, fmt.Errorf("save slot %d into %s: overwrites ctx before later saves", s.Slot, s.Reg)
		}
		used[s.Reg] = true
		out = append(out, LoadCtx(s.Reg, ctx, s.Slot))
	}
	return out, nil
}

// Return emits `return v`. fentry and fexit programs must return 0; an
// fmod_ret program returning non-zero skips the traced function and makes v
// its result.
func Return(v int32) asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, v), asm.Return()}
}

// KtimeGetNs emits `dst = bpf_ktime_get_ns()`. It clobbers r0-r5.
func KtimeGetNs(dst asm.Register) asm.Instructions {
	return call(dst, asm.FnKtimeGetNs)
}

// PidTgid emits `dst = bpf_get_current_pid_tgid()`: tgid << 32 | pid.
func PidTgid(dst asm.Register) asm.Instructions {
	return call(dst, asm.FnGetCurrentPidTgid)
}

// Tgid emits `dst = bpf_get_current_pid_tgid() >> 32`: the process id user
// space calls pid.
func Tgid(dst asm.Register) asm.Instructions {
	return append(PidTgid(dst), asm.RSh.Imm(dst, 32))
}

// Tid emits `dst = (u32)bpf_get_current_pid_tgid()`: the thread id.
func Tid(dst asm.Register) asm.Instructions {
	return append(PidTgid(dst), Narrow(dst, 4, false)...)
}

func call(dst asm.Register, fn asm.BuiltinFunc) asm.Instructions {
	out := asm.Instructions{fn.Call()}
	if dst != asm.R0 {
		out = append(out, asm.Mov.Reg(dst, asm.R0))
	}
	return out
}

// Comm emits `bpf_get_current_comm(fp + off, 16)`: the current task's comm
// into 16 bytes of stack at off (negative, 8-aligned).
func Comm(off int16) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, int32(off)),
		asm.Mov.Imm(asm.R2, CommLen),
		asm.FnGetCurrentComm.Call(),
	}
}

// FilterTgid emits `if ((bpf_get_current_pid_tgid() >> 32) != tgid) goto
// skip`. It clobbers r0-r5.
func FilterTgid(tgid uint32, skip string) asm.Instructions {
	return append(Tgid(asm.R0), asm.JNE.Imm(asm.R0, int32(tgid), skip))
}

// PadComm pads comm with NULs to 16 bytes and splits it into the two
// little-endian u64 words a stack comm buffer holds. Comms longer than 15
// bytes cannot match: the kernel keeps 15 and a NUL.
func PadComm(comm string) (lo, hi int64, err error) {
	if len(comm) == 0 || len(comm) > CommLen-1 {
		return 0, 0, fmt.Errorf("comm %q: want 1 to %d bytes", comm, CommLen-1)
	}
	var buf [CommLen]byte
	copy(buf[:], comm)
	for i := 7; i >= 0; i-- {
		lo = lo<<8 | int64(buf[i])
		hi = hi<<8 | int64(buf[8+i])
	}
	return lo, hi, nil
}

// FilterComm emits `*(u64 *)(fp + off) = 0; *(u64 *)(fp + off + 8) = 0;
// bpf_get_current_comm(fp + off, 16); if (((u64 *)(fp + off))[0] != lo ||
// ((u64 *)(fp + off))[1] != hi) goto skip`, comparing all 16 bytes of comm
// against the NUL-padded target. The buffer is zeroed first: some kernels
// (Debian's 6.1) copy the comm and its NUL but leave the bytes after as
// they were. It clobbers r0-r5.
func FilterComm(comm string, off int16, skip string) (asm.Instructions, error) {
	lo, hi, err := PadComm(comm)
	if err != nil {
		return nil, err
	}
	out := append(ZeroStack(off, CommLen), Comm(off)...)
	out = append(out,
		asm.LoadMem(asm.R1, asm.RFP, off, asm.DWord),
		asm.LoadImm(asm.R2, lo, asm.DWord),
		asm.JNE.Reg(asm.R1, asm.R2, skip),
		asm.LoadMem(asm.R1, asm.RFP, off+8, asm.DWord),
		asm.LoadImm(asm.R2, hi, asm.DWord),
		asm.JNE.Reg(asm.R1, asm.R2, skip),
	)
	return out, nil
}

// SizeOf maps a byte count to an asm.Size.
func SizeOf(bytes int) (asm.Size, error) {
	switch bytes {
	case 1:
		return asm.Byte, nil
	case 2:
		return asm.Half, nil
	case 4:
		return asm.Word, nil
	case 8:
		return asm.DWord, nil
	}
	return asm.InvalidSize, fmt.Errorf("cannot load %d bytes into a register", bytes)
}

// ReadField emits `dst = *(u<size*8> *)(src + off)`: a direct load through a
// typed (BTF) pointer; a fault reads as 0.
func ReadField(dst, src asm.Register, off int16, size int) (asm.Instruction, error) {
	sz, err := SizeOf(size)
	if err != nil {
		return asm.Instruction{}, err
	}
	return asm.LoadMem(dst, src, off, sz), nil
}

// ReadBitfield emits `dst = *(u<load*8> *)(src + off); dst <<= 64 -
// bitOff - bitSize; dst >>= 64 - bitSize` (arithmetic when signed): a
// bitfield of bitSize bits that starts bitOff bits into the bytes at off.
func ReadBitfield(dst, src asm.Register, off int16, load int, bitOff, bitSize uint32, signed bool) (asm.Instructions, error) {
	sz, err := SizeOf(load)
	if err != nil {
		return nil, err
	}
	if bitSize == 0 || bitOff+bitSize > uint32(8*load) {
		return nil, fmt.Errorf("bitfield of %d bits at bit %d does not fit a %d-byte load", bitSize, bitOff, load)
	}
	right := asm.RSh
	if signed {
		right = asm.ArSh
	}
	return asm.Instructions{
		asm.LoadMem(dst, src, off, sz),
		asm.LSh.Imm(dst, int32(64-bitOff-bitSize)),
		right.Imm(dst, int32(64-bitSize)),
	}, nil
}

// BitfieldLoad is the smallest load (1, 2, 4 or 8 bytes) that covers a
// bitfield of bitSize bits starting bitOff bits into its first byte.
func BitfieldLoad(bitOff, bitSize uint32) int {
	for _, n := range []int{1, 2, 4, 8} {
		if bitOff+bitSize <= uint32(8*n) {
			return n
		}
	}
	return 0
}

// ProbeRead emits `bpf_probe_read_kernel(fp + off, size, src)`: a checked
// copy through a pointer the verifier cannot type (void *, int *, casts).
// src must not be r1 or r2. r0 holds the helper's result; 0 on success.
func ProbeRead(off int16, size int32, src asm.Register) asm.Instructions {
	return probeRead(asm.FnProbeReadKernel, off, size, src)
}

// ProbeReadStr emits `bpf_probe_read_kernel_str(fp + off, size, src)`: a
// NUL-terminated string of at most size-1 bytes into the stack.
func ProbeReadStr(off int16, size int32, src asm.Register) asm.Instructions {
	return probeRead(asm.FnProbeReadKernelStr, off, size, src)
}

func probeRead(fn asm.BuiltinFunc, off int16, size int32, src asm.Register) asm.Instructions {
	out := asm.Instructions{}
	if src != asm.R3 {
		out = append(out, asm.Mov.Reg(asm.R3, src))
	}
	return append(out,
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, int32(off)),
		asm.Mov.Imm(asm.R2, size),
		fn.Call(),
	)
}

// ZeroStack emits `*(u64 *)(fp + off + 8*i) = 0` for every 8 bytes of size
// at off (8-aligned), and smaller stores for a tail, so helpers that read
// the buffer see initialised memory.
func ZeroStack(off int16, size int) asm.Instructions {
	var out asm.Instructions
	i := 0
	for ; i+8 <= size; i += 8 {
		out = append(out, storeImm64(asm.RFP, off+int16(i), 0))
	}
	for _, n := range []int{4, 2, 1} {
		if i+n <= size {
			sz, _ := SizeOf(n)
			out = append(out, asm.StoreImm(asm.RFP, off+int16(i), 0, sz))
			i += n
		}
	}
	return out
}

// RingbufOutput emits `bpf_ringbuf_output(&m, fp + off, size, 0)`; m is the
// map's name, resolved when the program is loaded.
func RingbufOutput(m string, off int16, size int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, 0).WithReference(m),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(off)),
		asm.Mov.Imm(asm.R3, size),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
	}
}
