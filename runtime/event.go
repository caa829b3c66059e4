package runtime

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Ring is a ring buffer that programs send fixed-size records (events) to,
// with a per-CPU counter of the records it had no room for.
type Ring struct {
	name string
	size uint32
}

// NewRing declares the ring buffer called name of size bytes (a power of
// two, at least a page).
func NewRing(name string, size uint32) *Ring { return &Ring{name: name, size: size} }

// Name is the ring buffer's map name.
func (r *Ring) Name() string { return r.name }

// MinRingbufSize and MaxRingbufSize bound a ring buffer's size: a page,
// and what the kernel accepts (below 4 GiB, a power of two).
const (
	MinRingbufSize = 4096
	MaxRingbufSize = 1 << 30
)

func checkRingbufSize(size uint32) error {
	if size < MinRingbufSize || size > MaxRingbufSize || size&(size-1) != 0 {
		return fmt.Errorf("size %d: want a power of two from %d to %d", size, MinRingbufSize, MaxRingbufSize)
	}
	return nil
}

func ringbufSpec(name string, size uint32) *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: KernelName(name), Type: ebpf.RingBuf, MaxEntries: size}
}

// lostName is the map counting what ring buffer name lost.
func lostName(name string) string { return name + ".lost" }

func lostSpec(name string) *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: KernelName(lostName(name)), Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}
}

// Specs returns the ring buffer's map and its lost-records counter, by
// collection name.
func (r *Ring) Specs() map[string]*ebpf.MapSpec {
	return map[string]*ebpf.MapSpec{r.name: ringbufSpec(r.name, r.size), lostName(r.name): lostSpec(r.name)}
}

// Output sends the view's bytes to the ring buffer:
// `if (bpf_ringbuf_output(&ring, &v, sizeof(v), 0)) lost[0]++` (per CPU).
func (r *Ring) Output(v View) {
	p := v.prog()
	if err := checkRingbufSize(r.size); err != nil {
		p.fail(fmt.Errorf("ring buffer %s: %w", r.name, err))
		return
	}
	if !v.m.check(p) {
		return
	}
	for name, spec := range r.Specs() {
		p.useMap(name, spec)
	}
	v.m.addr(p, asm.R2, 0)
	p.Emit(
		asm.LoadMapPtr(asm.R1, 0).WithReference(r.name),
		asm.Mov.Imm(asm.R3, int32(v.m.size)),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
	)
	ok := p.Label("output_ok")
	p.Emit(asm.JEq.Imm(asm.R0, 0, ok))
	countLost(p, lostName(r.name))
	p.Mark(ok)
}

// countLost emits `lost = map_lookup_elem(&name, &0); if (lost) *lost += 1`.
func countLost(p *Program, name string) {
	key := p.tempSlot()
	defer p.freeSlot(key)
	done := p.Label("lost")
	p.Emit(
		asm.StoreImm(asm.RFP, key, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(name),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, done),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
	)
	p.Mark(done)
}
