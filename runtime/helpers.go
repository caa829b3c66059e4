package runtime

import (
	"github.com/cilium/ebpf/asm"
)

// helperValue is a helper call's result, post-processed by post (which may
// be nil), with upper above its width.
func helperValue[T Integer](fn asm.BuiltinFunc, upper ext, post func(dst asm.Register) asm.Instructions) Num[T] {
	return helperWith[T](nil, fn, upper, post)
}

// helperWith calls fn after the argument set-up pre.
func helperWith[T Integer](pre asm.Instructions, fn asm.BuiltinFunc, upper ext, post func(dst asm.Register) asm.Instructions) Num[T] {
	return numOf[T](genFunc{
		f: func(p *Program, dst asm.Register, _ regs) {
			p.emitAll(pre)
			p.Emit(fn.Call())
			if dst != asm.R0 {
				p.Emit(asm.Mov.Reg(dst, asm.R0))
			}
			if post != nil {
				p.emitAll(post(dst))
			}
		},
		helper: true,
		upper:  upper,
	})
}

// KtimeNs is bpf_ktime_get_ns(): monotonic nanoseconds.
func KtimeNs() U64 { return helperValue[uint64](asm.FnKtimeGetNs, extBoth, nil) }

// PidTgidValue is bpf_get_current_pid_tgid(): tgid << 32 | pid.
func PidTgidValue() U64 { return helperValue[uint64](asm.FnGetCurrentPidTgid, extBoth, nil) }

// TgidValue is the current process id (the upper half of pid_tgid): what
// user space calls the pid.
func TgidValue() U32 {
	return helperValue[uint32](asm.FnGetCurrentPidTgid, extZero, func(dst asm.Register) asm.Instructions {
		return asm.Instructions{asm.RSh.Imm(dst, 32)}
	})
}

// TidValue is the current thread id (the lower half of pid_tgid).
func TidValue() U32 {
	// The low half: extended only where a consumer needs it.
	return helperValue[uint32](asm.FnGetCurrentPidTgid, extNone, nil)
}

// CPU is bpf_get_smp_processor_id(): the CPU the program runs on.
func CPU() U32 { return helperValue[uint32](asm.FnGetSmpProcessorId, extZero, nil) }

// FuncIP is bpf_get_func_ip(): the address of the traced function (Linux
// 5.15 and later).
func FuncIP() U64 {
	return helperWith[uint64](asm.Instructions{asm.Mov.Reg(asm.R1, CtxReg)}, asm.FnGetFuncIp, extBoth, nil)
}

// CurrentTask is bpf_get_current_task_btf(): the current task_struct as a
// BTF-typed pointer, read with direct loads (Linux 5.11 and later).
func CurrentTask() Ptr {
	return Ptr{addr: helperValue[uint64](asm.FnGetCurrentTaskBtf, extBoth, nil).e, typ: "task_struct", trusted: true}
}
