package runtime_test

import (
	"math"
	"math/bits"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// computed holds what the compute program works out from shmem_file_llseek's
// offset (x, signed 64-bit) and whence (w, signed 32-bit).
type computed struct {
	X, W                         int64
	Add, Sub, Mul, Div, Mod      int64
	UDiv, UMod, Shl, Sar, Shr    uint64
	And, Or, Xor, Neg, Min, Max  int64
	Log2, Trunc32, Sext16        uint64
	AddV, MulV, DivV, UDivV      int64
	Flags                        uint64
	HelperDiff, TgidPlusX, ModV  int64
	MinV, MaxV                   int64
	Big                          uint64
	Else                         uint64
	_                            uint64
	NotBig, Shr5, Low8, AndNotW  uint64
	SignedLtZero, UnsignedHigh   uint64
	Sub32Wrap, MulWrap8, DivNeg7 uint64
}

// Condition bits in computed.Flags.
const (
	flagAbove2p31   = 1 << iota // x > 2^31 (a constant no 32-bit immediate holds)
	flagNegative                // x < 0, signed
	flagEqW                     // x == w
	flagAnd                     // x > 10 && w == 1
	flagOr                      // x == 0 || w == 2
	flagNot                     // !(x >= 100)
	flagUnsignedBig             // (u64)x >= 2^63
	flagBits                    // x & 0x10 != 0
)

// buildCompute hand-builds a program that computes every field of computed
// in the kernel.
func buildCompute(t *testing.T) *runtime.Program {
	t.Helper()
	p := runtime.New(runtime.Info{Name: "compute", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
	p.FilterTgid(uint32(os.Getpid()))
	x := runtime.Arg[int64](p, "offset", 1)
	w := runtime.Arg[int32](p, "whence", 2).S64()
	var c computed
	ev := runtime.NewView[computed](p).View
	set := func(field *int64, v runtime.S64) {
		runtime.Set(ev, uintptr(unsafe.Pointer(field))-uintptr(unsafe.Pointer(&c)), v)
	}
	setU := func(field *uint64, v runtime.U64) {
		runtime.Set(ev, uintptr(unsafe.Pointer(field))-uintptr(unsafe.Pointer(&c)), v)
	}
	set(&c.X, x)
	set(&c.W, w)
	set(&c.Add, x.Add(1000))
	set(&c.Sub, x.Sub(7))
	set(&c.Mul, x.Mul(3))
	set(&c.Div, x.Div(7))
	set(&c.Mod, x.Mod(7))
	setU(&c.UDiv, x.U64().Div(7))
	setU(&c.UMod, x.U64().Mod(1000))
	setU(&c.Shl, x.U64().Shl(3))
	setU(&c.Sar, x.Shr(2).U64())
	setU(&c.Shr, x.U64().Shr(2))
	set(&c.And, x.And(0xff))
	set(&c.Or, x.Or(0x100))
	set(&c.Xor, x.Xor(-1))
	set(&c.Neg, x.Neg())
	set(&c.Min, x.Min(100))
	set(&c.Max, x.Max(100))
	setU(&c.Log2, x.U64().Log2())
	setU(&c.Trunc32, x.U32().U64())
	setU(&c.Sext16, x.S16().S64().U64())
	set(&c.AddV, x.AddV(w))
	set(&c.MulV, x.MulV(w))
	set(&c.DivV, x.DivV(w))
	set(&c.UDivV, x.U64().DivV(w.U64()).S64())
	set(&c.ModV, x.ModV(w))
	set(&c.MinV, x.MinV(w))
	set(&c.MaxV, w.MaxV(x))
	// Both operands call helpers: one waits on the stack.
	set(&c.HelperDiff, runtime.KtimeNs().SubV(runtime.KtimeNs()).Neg().S64())
	set(&c.TgidPlusX, runtime.TgidValue().U64().S64().AddV(x))
	setU(&c.Big, runtime.Const[uint64](1<<40).AddV(x.U64()))
	// Narrow values wrap as C does.
	setU(&c.Sub32Wrap, x.U32().Sub(1).U64())
	setU(&c.MulWrap8, x.U8().Mul(3).U64())
	setU(&c.DivNeg7, x.Div(-7).U64())

	flag := func(bit uint64, cond runtime.Cond) {
		p.If(cond, func() {
			runtime.AtomicAdd(ev, unsafe.Offsetof(c.Flags), runtime.Uint64(bit))
		})
	}
	flag(flagAbove2p31, x.Gt(1<<31))
	flag(flagNegative, x.Lt(0))
	flag(flagEqW, x.EqV(w))
	flag(flagAnd, x.Gt(10).And(w.Eq(1)))
	flag(flagOr, x.Eq(0).Or(w.Eq(2)))
	flag(flagNot, x.Ge(100).Not())
	flag(flagUnsignedBig, x.U64().Ge(1<<63))
	flag(flagBits, x.HasBits(0x10))
	p.IfElse(x.Gt(1000), func() {
		setU(&c.Else, runtime.Uint64(1))
	}, func() {
		setU(&c.Else, runtime.Uint64(2))
	})
	p.If(x.U64().Lt(1<<40).Not(), func() { setU(&c.NotBig, runtime.Uint64(1)) })
	setU(&c.Shr5, x.U64().ShrV(runtime.Uint64(5)))
	setU(&c.Low8, x.U8().U64())
	setU(&c.AndNotW, x.U64().AndV(w.U64().Xor(math.MaxUint64)))
	p.If(x.Lt(0), func() { setU(&c.SignedLtZero, runtime.Uint64(1)) })
	p.If(x.U64().Gt(1<<63), func() { setU(&c.UnsignedHigh, runtime.Uint64(1)) })
	events.Output(ev)
	require.NoError(t, p.Err())
	return p
}

// want computes in Go what the kernel should have.
func want(x int64, w int32) computed {
	wx := int64(w)
	var c computed
	c.X, c.W = x, wx
	c.Add, c.Sub, c.Mul, c.Div, c.Mod = x+1000, x-7, x*3, x/7, x%7
	c.UDiv, c.UMod, c.Shl, c.Sar, c.Shr = uint64(x)/7, uint64(x)%1000, uint64(x)<<3, uint64(x>>2), uint64(x)>>2
	c.And, c.Or, c.Xor, c.Neg = x&0xff, x|0x100, x^-1, -x
	c.Min, c.Max = min(x, 100), max(x, 100)
	if u := uint64(x); u > 0 {
		c.Log2 = uint64(bits.Len64(u) - 1)
	}
	c.Trunc32, c.Sext16 = uint64(uint32(x)), uint64(int64(int16(x)))
	c.AddV, c.MulV = x+wx, x*wx
	if wx != 0 {
		c.DivV, c.ModV, c.UDivV = x/wx, x%wx, int64(uint64(x)/uint64(wx))
	} else {
		c.ModV = x // BPF: x % 0 is x, x / 0 is 0
	}
	c.MinV, c.MaxV = min(x, wx), max(wx, x)
	c.TgidPlusX = int64(os.Getpid()) + x
	c.Big = 1<<40 + uint64(x)
	c.Sub32Wrap, c.MulWrap8, c.DivNeg7 = uint64(uint32(x)-1), uint64(uint8(x)*3), uint64(x/-7)
	for bit, ok := range map[uint64]bool{
		flagAbove2p31: x > 1<<31, flagNegative: x < 0, flagEqW: x == wx, flagAnd: x > 10 && wx == 1,
		flagOr: x == 0 || wx == 2, flagNot: !(x >= 100), flagUnsignedBig: uint64(x) >= 1<<63, flagBits: x&0x10 != 0,
	} {
		if ok {
			c.Flags |= bit
		}
	}
	c.Else = 2
	if x > 1000 {
		c.Else = 1
	}
	if !(uint64(x) < 1<<40) {
		c.NotBig = 1
	}
	c.Shr5, c.Low8, c.AndNotW = uint64(x)>>5, uint64(uint8(x)), uint64(x)&^uint64(wx)
	if x < 0 {
		c.SignedLtZero = 1
	}
	if uint64(x) > 1<<63 {
		c.UnsignedHigh = 1
	}
	return c
}

// TestVMCompute runs arithmetic, conversions, comparisons and conditions in
// the kernel on the offset and whence of lseek(2) calls this process makes,
// and checks every result against the same computation in Go: signed and
// unsigned, narrow types wrapping, 64-bit constants, values on both sides,
// helpers on both sides.
func TestVMCompute(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		rd := attach[computed](t, buildCompute(t))
		f, err := os.CreateTemp("", "compute")
		require.NoError(t, err)
		defer os.Remove(f.Name())
		defer f.Close()
		inputs := []struct {
			x int64
			w int32
		}{
			{0, 0}, {1, 1}, {5, 2}, {100, 1}, {1000, 0}, {1001, 3}, {-1, 1}, {-50, 2}, {-7, 4},
			{1 << 31, 1}, {1<<31 + 5, 2}, {1 << 32, 0}, {0x1_0000_0010, 3}, {math.MaxInt64, 1},
			{math.MinInt64, 1}, {-(1 << 40), 3}, {0x7fff_8001, 0}, {12345678901, 4},
		}
		for _, in := range inputs {
			// whence is at most SEEK_MAX (4), or the file's llseek is not called;
			// lseek fails (EINVAL) for many of these, after the llseek of
			// tmpfs (shmem_file_llseek: f_op->llseek, never inlined) ran.
			unix.Syscall(unix.SYS_LSEEK, f.Fd(), uintptr(in.x), uintptr(in.w))
		}
		got := collect(t, rd, len(inputs), 2*time.Second)
		require.Len(t, got, len(inputs))
		for i, in := range inputs {
			w := want(in.x, in.w)
			g := got[i]
			assert.Less(t, uint64(g.HelperDiff), uint64(time.Second), "ktime - ktime, both helpers")
			g.HelperDiff = 0
			assert.Equal(t, w, g, "x=%d w=%d", in.x, in.w)
		}
		t.Logf("%d lseek calls computed on %s as in Go", len(inputs), runtime.KernelRelease())
	})
}
