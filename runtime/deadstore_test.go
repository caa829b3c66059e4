package runtime

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
)

func TestDropDeadStores(t *testing.T) {
	prologue := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	zero := storeImm64(asm.RFP, -16, 0)
	set := asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord)
	join := func(parts ...asm.Instructions) asm.Instructions {
		var out asm.Instructions
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	keeps := func(name string, between ...asm.Instruction) {
		t.Helper()
		in := join(prologue, asm.Instructions{zero}, between, asm.Instructions{set})
		assert.Equal(t, in, dropDeadStores(in), name)
	}
	drops := func(name string, between ...asm.Instruction) {
		t.Helper()
		in := join(prologue, asm.Instructions{zero}, between, asm.Instructions{set})
		assert.Equal(t, join(prologue, between, asm.Instructions{set}), dropDeadStores(in), name)
	}
	drops("overwritten at once")
	drops("a helper without arguments, other slots, the ctx and what it points at",
		asm.FnKtimeGetNs.Call(), asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord), asm.LoadMem(asm.R1, asm.RFP, -24, asm.DWord),
		asm.LoadMem(asm.R0, asm.R6, 0, asm.DWord), asm.LoadMem(asm.R0, asm.R0, 8, asm.DWord))
	keeps("read first", asm.LoadMem(asm.R1, asm.RFP, -16, asm.Word))
	keeps("read in part", asm.LoadMem(asm.R1, asm.RFP, -12, asm.Word))
	keeps("a helper that takes pointers", asm.FnMapLookupElem.Call())
	keeps("a pointer to the stack", asm.Mov.Reg(asm.R2, asm.RFP))
	keeps("a jump out", asm.JEq.Imm(asm.R0, 0, "out"))
	keeps("memory through a register that may point at the stack", asm.LoadMem(asm.R0, asm.R2, 0, asm.DWord))
	keeps("an atomic add to the slot", asm.AddAtomic.Mem(asm.RFP, asm.R1, asm.DWord, -16))
	in := join(prologue, asm.Instructions{zero, asm.StoreMem(asm.RFP, -16, asm.R0, asm.Word)})
	assert.Equal(t, in, dropDeadStores(in), "overwritten in part")
	in = join(prologue, asm.Instructions{zero.WithSymbol("here"), set})
	assert.Equal(t, in, dropDeadStores(in), "a labeled store stays (jumps land on it)")
	in = join(prologue, asm.Instructions{zero})
	assert.Equal(t, in, dropDeadStores(in), "never overwritten")
}
