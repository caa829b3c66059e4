package runtime

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
)

func TestDropRedundant(t *testing.T) {
	add := func(off int16) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Imm(asm.R0, 1),
			asm.LoadMapValue(asm.R1, 0, 0).WithReference("counts"),
			asm.AddAtomic.Mem(asm.R1, asm.R0, asm.DWord, off),
		}
	}
	join := func(parts ...asm.Instructions) asm.Instructions {
		var out asm.Instructions
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	// Two adds in a row share the constant and the address.
	assert.Equal(t, join(add(0), add(8)[2:]), dropRedundant(join(add(0), add(8))))
	// Not across a label: another path may arrive there.
	labeled := add(8)
	labeled[0] = labeled[0].WithSymbol("there")
	assert.Equal(t, join(add(0), labeled), dropRedundant(join(add(0), labeled)))
	// Not across a call, which clobbers r0-r5.
	call := asm.Instructions{asm.FnKtimeGetNs.Call()}
	assert.Equal(t, join(add(0), call, add(8)), dropRedundant(join(add(0), call, add(8))))
	// Not after the register changed; the constant still holds.
	moved := asm.Instructions{asm.Add.Imm(asm.R1, 8)}
	assert.Equal(t, join(add(0), moved, add(8)[1:]), dropRedundant(join(add(0), moved, add(8))))
	// A fetching add writes its source register.
	fetch := asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.LoadMapValue(asm.R1, 0, 0).WithReference("counts"),
		asm.FetchAdd.Mem(asm.R1, asm.R0, asm.DWord, 0)}
	assert.Equal(t, join(fetch, add(8)[0:1], add(8)[2:]), dropRedundant(join(fetch, add(8))))
	// Another map's address is another value.
	other := add(0)
	other[1] = other[1].WithReference("other")
	assert.Equal(t, join(add(0), other[1:]), dropRedundant(join(add(0), other)))
}

func TestDropRedundantStackLoads(t *testing.T) {
	load := asm.LoadMem(asm.R0, asm.RFP, -16, asm.DWord)
	global := asm.LoadMapValue(asm.R1, 0, 0).WithReference("counts")
	// Two adds of one spilled value to one global: loaded once.
	in := asm.Instructions{load, global, asm.AddAtomic.Mem(asm.R1, asm.R0, asm.DWord, 0), load, asm.AddAtomic.Mem(asm.R1, asm.R0, asm.DWord, 8)}
	assert.Equal(t, asm.Instructions{in[0], in[1], in[2], in[4]}, dropRedundant(in))
	// Not after the slot may have changed: a store to the stack, a store
	// through a pointer that may be the stack's, a call.
	for _, between := range []asm.Instruction{
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.StoreMem(asm.R2, 0, asm.R1, asm.DWord),
		asm.FnKtimeGetNs.Call(),
	} {
		in := asm.Instructions{load, between, load}
		assert.Equal(t, in, dropRedundant(in), "%v", between)
	}
	// A load of another size is another value.
	in = asm.Instructions{load, asm.LoadMem(asm.R0, asm.RFP, -16, asm.Word)}
	assert.Equal(t, in, dropRedundant(in))
}
