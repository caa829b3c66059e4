package runtime_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/runtime"
)

// raw is one instruction as the kernel sees it.
type raw struct {
	op       asm.OpCode
	dst, src asm.Register
	off      int16
	imm      int64
}

func raws(insns asm.Instructions) []raw {
	out := make([]raw, len(insns))
	for i, ins := range insns {
		out[i] = raw{ins.OpCode, ins.Dst, ins.Src, ins.Offset, ins.Constant}
	}
	return out
}

// assemble proves insns marshal; jumps to skip labels land on a final exit.
func assemble(t *testing.T, insns asm.Instructions, labels ...string) {
	t.Helper()
	tail := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	for _, l := range labels {
		tail[0] = tail[0].WithSymbol(l)
	}
	var buf bytes.Buffer
	require.NoError(t, append(insns, tail...).Marshal(&buf, binary.LittleEndian))
}

var (
	ldxdw = asm.LoadMemOp(asm.DWord)
	ldxw  = asm.LoadMemOp(asm.Word)
	lsh   = asm.LSh.Op(asm.ImmSource)
	rsh   = asm.RSh.Op(asm.ImmSource)
	arsh  = asm.ArSh.Op(asm.ImmSource)
	movi  = asm.Mov.Op(asm.ImmSource)
	movr  = asm.Mov.Op(asm.RegSource)
	addi  = asm.Add.Op(asm.ImmSource)
	call  = asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call)
	exit  = asm.OpCode(asm.JumpClass).SetJumpOp(asm.Exit)
	lddw  = asm.LoadImmOp(asm.DWord)
	jner  = asm.JNE.Op(asm.RegSource)
	jnei  = asm.JNE.Op(asm.ImmSource)
	stdw  = asm.StoreImmOp(asm.DWord)
)

// unresolved is the offset of a jump whose label is resolved on marshal.
const unresolved = -1

func TestLoadArg(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slot   int
		size   int
		signed bool
		want   []raw
	}{
		{"pointer", 0, 8, false, []raw{{ldxdw, asm.R2, asm.R1, 0, 0}}},
		{"int", 2, 4, true, []raw{{ldxdw, asm.R2, asm.R1, 16, 0}, {lsh, asm.R2, 0, 0, 32}, {arsh, asm.R2, 0, 0, 32}}},
		{"u32", 3, 4, false, []raw{{ldxdw, asm.R2, asm.R1, 24, 0}, {lsh, asm.R2, 0, 0, 32}, {rsh, asm.R2, 0, 0, 32}}},
		{"u16", 1, 2, false, []raw{{ldxdw, asm.R2, asm.R1, 8, 0}, {lsh, asm.R2, 0, 0, 48}, {rsh, asm.R2, 0, 0, 48}}},
		{"s8", 11, 1, true, []raw{{ldxdw, asm.R2, asm.R1, 88, 0}, {lsh, asm.R2, 0, 0, 56}, {arsh, asm.R2, 0, 0, 56}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insns := runtime.LoadArg(asm.R2, asm.R1, tc.slot, tc.size, tc.signed)
			assert.Equal(t, tc.want, raws(insns))
			assemble(t, insns)
		})
	}
	// The return value sits after the last argument slot.
	assert.Equal(t, []raw{{ldxdw, asm.R0, asm.R6, 24, 0}, {lsh, asm.R0, 0, 0, 32}, {arsh, asm.R0, 0, 0, 32}},
		raws(runtime.LoadRet(asm.R0, asm.R6, 3, 4, true)))
}

func TestSaveArgs(t *testing.T) {
	insns, err := runtime.SaveArgs(asm.R1, []runtime.Save{{Slot: 0, Reg: asm.R6}, {Slot: 2, Reg: asm.R9}})
	require.NoError(t, err)
	assert.Equal(t, []raw{{ldxdw, asm.R6, asm.R1, 0, 0}, {ldxdw, asm.R9, asm.R1, 16, 0}}, raws(insns))

	_, err = runtime.SaveArgs(asm.R1, []runtime.Save{{Slot: 0, Reg: asm.R10}})
	assert.ErrorContains(t, err, "only r6-r9")
	_, err = runtime.SaveArgs(asm.R1, []runtime.Save{{Slot: 0, Reg: asm.R5}})
	assert.ErrorContains(t, err, "only r6-r9")
	_, err = runtime.SaveArgs(asm.R1, []runtime.Save{{Slot: 0, Reg: asm.R7}, {Slot: 1, Reg: asm.R7}})
	assert.ErrorContains(t, err, "already used")
	_, err = runtime.SaveArgs(asm.R6, []runtime.Save{{Slot: 0, Reg: asm.R6}, {Slot: 1, Reg: asm.R7}})
	assert.ErrorContains(t, err, "overwrites ctx")
}

func TestReturnAndHelpers(t *testing.T) {
	assert.Equal(t, []raw{{movi, asm.R0, 0, 0, 0}, {exit, 0, 0, 0, 0}}, raws(runtime.Return(0)))
	assert.Equal(t, []raw{{movi, asm.R0, 0, 0, -1}, {exit, 0, 0, 0, 0}}, raws(runtime.Return(-1)))
	assert.Equal(t, []raw{{call, 0, 0, 0, 5}, {movr, asm.R7, asm.R0, 0, 0}}, raws(runtime.KtimeGetNs(asm.R7)))
	assert.Equal(t, []raw{{call, 0, 0, 0, 14}, {movr, asm.R7, asm.R0, 0, 0}, {asm.RSh.Op(asm.ImmSource), asm.R7, 0, 0, 32}}, raws(runtime.Tgid(asm.R7)))
	assert.Equal(t, []raw{{call, 0, 0, 0, 14}}, raws(runtime.PidTgid(asm.R0)))
	assert.Equal(t, []raw{{movr, asm.R1, asm.R10, 0, 0}, {addi, asm.R1, 0, 0, -16}, {movi, asm.R2, 0, 0, 16}, {call, 0, 0, 0, 16}},
		raws(runtime.Comm(-16)))
	assert.Equal(t, []raw{{movr, asm.R3, asm.R7, 0, 0}, {movr, asm.R1, asm.R10, 0, 0}, {addi, asm.R1, 0, 0, -8}, {movi, asm.R2, 0, 0, 4}, {call, 0, 0, 0, 113}},
		raws(runtime.ProbeRead(-8, 4, asm.R7)))
	assert.Equal(t, []raw{{movr, asm.R1, asm.R10, 0, 0}, {addi, asm.R1, 0, 0, -64}, {movi, asm.R2, 0, 0, 64}, {call, 0, 0, 0, 115}},
		raws(runtime.ProbeReadStr(-64, 64, asm.R3)))
	rb := runtime.RingbufOutput("events", -32, 32)
	assert.Equal(t, "events", rb[0].Reference())
	assert.Equal(t, asm.FnRingbufOutput.Call().Constant, rb[len(rb)-1].Constant)
	assert.Equal(t, int64(130), rb[len(rb)-1].Constant)
}

func TestFilterTgid(t *testing.T) {
	insns := runtime.FilterTgid(4242, "skip")
	assert.Equal(t, []raw{{call, 0, 0, 0, 14}, {rsh, asm.R0, 0, 0, 32}, {jnei, asm.R0, 0, unresolved, 4242}}, raws(insns))
	assert.Equal(t, "skip", insns[2].Reference())
	assemble(t, insns, "skip")
}

func TestFilterComm(t *testing.T) {
	lo, hi, err := runtime.PadComm("curl")
	require.NoError(t, err)
	assert.Equal(t, int64(0x6c727563), lo, "\"curl\" little-endian, NUL padded")
	assert.Equal(t, int64(0), hi)
	lo, hi, err = runtime.PadComm("systemd-journal")
	require.NoError(t, err)
	assert.Equal(t, int64(0x2d646d6574737973), lo) // "systemd-"
	assert.Equal(t, int64(0x006c616e72756f6a), hi) // "journal\x00"

	_, _, err = runtime.PadComm("sixteen-chars-xx")
	assert.ErrorContains(t, err, "1 to 15 bytes")
	_, _, err = runtime.PadComm("")
	assert.Error(t, err)

	insns, err := runtime.FilterComm("systemd-journal", -16, "skip")
	require.NoError(t, err)
	assert.Equal(t, []raw{
		{stdw, asm.R10, 0, -16, 0}, {stdw, asm.R10, 0, -8, 0}, // zeroed: some kernels leave bytes after the NUL
		{movr, asm.R1, asm.R10, 0, 0}, {addi, asm.R1, 0, 0, -16}, {movi, asm.R2, 0, 0, 16}, {call, 0, 0, 0, 16},
		{ldxdw, asm.R1, asm.R10, -16, 0}, {lddw, asm.R2, 0, 0, 0x2d646d6574737973}, {jner, asm.R1, asm.R2, unresolved, 0},
		{ldxdw, asm.R1, asm.R10, -8, 0}, {lddw, asm.R2, 0, 0, 0x006c616e72756f6a}, {jner, asm.R1, asm.R2, unresolved, 0},
	}, raws(insns))
	assemble(t, insns, "skip")
}

func TestFieldReads(t *testing.T) {
	ins, err := runtime.ReadField(asm.R2, asm.R3, 16, 2)
	require.NoError(t, err)
	assert.Equal(t, raw{asm.LoadMemOp(asm.Half), asm.R2, asm.R3, 16, 0}, raws(asm.Instructions{ins})[0])
	_, err = runtime.ReadField(asm.R2, asm.R3, 16, 3)
	assert.ErrorContains(t, err, "3 bytes")

	// skc_reuseport: 1 bit, 4 bits into byte 19.
	insns, err := runtime.ReadBitfield(asm.R2, asm.R2, 19, 1, 4, 1, false)
	require.NoError(t, err)
	assert.Equal(t, []raw{{asm.LoadMemOp(asm.Byte), asm.R2, asm.R2, 19, 0}, {lsh, asm.R2, 0, 0, 59}, {rsh, asm.R2, 0, 0, 63}}, raws(insns))
	insns, err = runtime.ReadBitfield(asm.R2, asm.R2, 0, 4, 3, 12, true)
	require.NoError(t, err)
	assert.Equal(t, []raw{{ldxw, asm.R2, asm.R2, 0, 0}, {lsh, asm.R2, 0, 0, 49}, {arsh, asm.R2, 0, 0, 52}}, raws(insns))
	_, err = runtime.ReadBitfield(asm.R2, asm.R2, 0, 1, 4, 5, false)
	assert.ErrorContains(t, err, "does not fit")

	assert.Equal(t, 1, runtime.BitfieldLoad(4, 4))
	assert.Equal(t, 2, runtime.BitfieldLoad(4, 5))
	assert.Equal(t, 8, runtime.BitfieldLoad(30, 4))
}

func TestZeroStack(t *testing.T) {
	insns := runtime.ZeroStack(-16, 16)
	assert.Equal(t, []raw{{stdw, asm.R10, 0, -16, 0}, {stdw, asm.R10, 0, -8, 0}}, raws(insns), "8-byte stores")
	insns = runtime.ZeroStack(-16, 15)
	assert.Equal(t, []raw{{stdw, asm.R10, 0, -16, 0}, {asm.StoreImmOp(asm.Word), asm.R10, 0, -8, 0},
		{asm.StoreImmOp(asm.Half), asm.R10, 0, -4, 0}, {asm.StoreImmOp(asm.Byte), asm.R10, 0, -2, 0}}, raws(insns))
	assemble(t, insns)
}
