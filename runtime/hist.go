package runtime

import (
	"fmt"
	"math"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// HistKind is how a histogram buckets its samples.
type HistKind int

const (
	// Log2 buckets: slot 0 holds 0 and 1, slot k holds 2^k to 2^(k+1)-1.
	Log2 HistKind = iota + 1
	// Linear buckets: slot k holds Base+k*Step to Base+(k+1)*Step-1; the
	// last slot also holds everything above.
	Linear
)

func (k HistKind) String() string {
	switch k {
	case Log2:
		return "log2"
	case Linear:
		return "linear"
	}
	return fmt.Sprintf("HistKind(%d)", int(k))
}

// HistOptions shape a histogram. Generated code fills them from the
// //fentrygen:map annotation.
type HistOptions struct {
	// Slots is the number of buckets (default 27 for log2, 50 linear).
	Slots int
	// Base and Step place linear buckets (Step default 1).
	Base, Step uint64
	// MaxEntries bounds the keys of a keyed histogram (default 10240).
	MaxEntries uint32
}

// MaxHistSlots bounds a histogram's buckets: each is a u64 of one map
// value.
const MaxHistSlots = 512

// DefaultLog2Slots is bcc's MAX_SLOTS for most log2 histograms.
const DefaultLog2Slots = 27

// histDecl is a histogram map: keys (a constant 0 when not keyed) to
// [Slots]u64.
type histDecl struct {
	mapDecl
	kind HistKind
	opts HistOptions
	err  error
}

func (h *histDecl) declareHist(name string, kind HistKind, key int, opts HistOptions) {
	if opts.Slots == 0 {
		opts.Slots = map[HistKind]int{Log2: DefaultLog2Slots, Linear: 50}[kind]
	}
	if kind == Linear && opts.Step == 0 {
		opts.Step = 1
	}
	h.kind, h.opts = kind, opts
	switch {
	case opts.Slots < 1 || opts.Slots > MaxHistSlots:
		h.err = fmt.Errorf("histogram %s: %d slots (want 1 to %d)", name, opts.Slots, MaxHistSlots)
	case opts.Base > math.MaxInt32 || opts.Step > math.MaxInt32:
		h.err = fmt.Errorf("histogram %s: base and step must be below 2^31", name)
	}
	if key == 0 {
		h.declare(name, ebpf.Array, 4, 8*opts.Slots, MapOptions{MaxEntries: 1})
		return
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = 10240
	}
	h.declare(name, ebpf.Hash, key, 8*opts.Slots, MapOptions{MaxEntries: opts.MaxEntries})
}

// Kind is how the histogram buckets.
func (h *histDecl) Kind() HistKind { return h.kind }

// Options are the histogram's shape.
func (h *histDecl) Options() HistOptions { return h.opts }

// bucket is the slot of a sample, 0 to Slots-1.
func (h *histDecl) bucket(v scalar) U64 {
	last := uint64(h.opts.Slots - 1)
	n := convertTo[uint64](v)
	if h.kind == Log2 {
		return n.Log2().Min(last)
	}
	base, step := int32(h.opts.Base), int32(h.opts.Step)
	return numOf[uint64](unary{a: n.s(), upper: extBoth, f: func(p *Program, dst asm.Register, _ []asm.Register) {
		above, done := p.Label("bucket"), p.Label("bucket")
		if base != 0 {
			p.Emit(asm.JGE.Imm(dst, base, above), asm.Mov.Imm(dst, 0), asm.Ja.Label(done))
			p.Mark(above)
			p.Emit(asm.Sub.Imm(dst, base))
		}
		if step != 1 {
			p.Emit(asm.Div.Imm(dst, step))
		}
		p.Emit(asm.JLE.Imm(dst, int32(last), done), asm.Mov.Imm(dst, int32(last)))
		p.Mark(done)
	}})
}

// record emits: bucket of v; value under key (inserted as zeroes when
// keyed and missing); `lock value[bucket] += n`, or += 1 when n is nil.
func (h *histDecl) record(p *Program, key mem, keyed bool, v, n Value) {
	if h.err != nil {
		p.fail(h.err)
		return
	}
	if !h.use(p) {
		return
	}
	s := v.scalar()
	if s.e == nil {
		p.fail(fmt.Errorf("histogram %s: Record of a zero value", h.name))
		return
	}
	// The byte offset of the bucket, before the lookup: v may call helpers.
	off := mem{stack: p.Alloc(8), size: 8}
	off.store(p, 0, h.bucket(s).Shl(3).s())
	count := asm.Mov.Imm(asm.R1, 1)
	if n != nil {
		ns := n.scalar()
		if ns.e == nil {
			p.fail(fmt.Errorf("histogram %s: RecordN of a zero count", h.name))
			return
		}
		cnt := mem{stack: p.Alloc(8), size: 8}
		cnt.store(p, 0, convertTo[uint64](ns).s())
		count = asm.LoadMem(asm.R1, asm.RFP, cnt.stack, asm.DWord)
	}
	if keyed {
		h.lookupOrInsert(p, key, 8*h.opts.Slots)
	} else {
		h.callLookup(p, key)
	}
	done := p.Label("record")
	p.Emit(
		asm.JEq.Imm(asm.R0, 0, done),
		asm.LoadMem(asm.R1, asm.RFP, off.stack, asm.DWord),
		asm.Add.Reg(asm.R0, asm.R1),
		count,
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
	)
	p.Mark(done)
}

func (h *histDecl) recordUnkeyed(c Ctx, v, n Value) {
	p := c.program()
	key := mem{stack: p.tempSlot(), size: 4}
	defer p.freeSlot(key.stack)
	p.Emit(asm.StoreImm(asm.RFP, key.stack, 0, asm.Word))
	h.record(p, key, false, v, n)
}

// Log2Hist is a histogram of log2 buckets, like bcc's latency histograms.
// Declare it at package level: var lat runtime.Log2Hist.
type Log2Hist struct{ histDecl }

// Declare names and shapes the histogram; generated code calls it.
func (h *Log2Hist) Declare(name string, opts HistOptions) { h.declareHist(name, Log2, 0, opts) }

// Record counts v in its bucket.
func (h *Log2Hist) Record(c Ctx, v Value) { h.recordUnkeyed(c, v, nil) }

// RecordN counts v in its bucket n times (n pages of a folio, n bytes...).
func (h *Log2Hist) RecordN(c Ctx, v, n Value) { h.recordUnkeyed(c, v, n) }

// LinearHist is a histogram of equal-width buckets.
type LinearHist struct{ histDecl }

// Declare names and shapes the histogram; generated code calls it.
func (h *LinearHist) Declare(name string, opts HistOptions) { h.declareHist(name, Linear, 0, opts) }

// Record counts v in its bucket.
func (h *LinearHist) Record(c Ctx, v Value) { h.recordUnkeyed(c, v, nil) }

// RecordN counts v in its bucket n times (n pages of a folio, n bytes...).
func (h *LinearHist) RecordN(c Ctx, v, n Value) { h.recordUnkeyed(c, v, n) }

// Log2HistBy is one log2 histogram per key (per pid, per comm, per
// function...).
type Log2HistBy[K Elem] struct{ histDecl }

// Declare names and shapes the histograms; generated code calls it.
func (h *Log2HistBy[K]) Declare(name string, opts HistOptions) {
	var k K
	h.declareHist(name, Log2, k.elemSize(), opts)
}

// Record counts v in key's histogram.
func (h *Log2HistBy[K]) Record(c Ctx, key K, v Value) { h.recordKeyed(c, key, v, nil) }

// RecordN counts v in key's histogram n times.
func (h *Log2HistBy[K]) RecordN(c Ctx, key K, v, n Value) { h.recordKeyed(c, key, v, n) }

// LinearHistBy is one linear histogram per key.
type LinearHistBy[K Elem] struct{ histDecl }

// Declare names and shapes the histograms; generated code calls it.
func (h *LinearHistBy[K]) Declare(name string, opts HistOptions) {
	var k K
	h.declareHist(name, Linear, k.elemSize(), opts)
}

// Record counts v in key's histogram.
func (h *LinearHistBy[K]) Record(c Ctx, key K, v Value) { h.recordKeyed(c, key, v, nil) }

// RecordN counts v in key's histogram n times.
func (h *LinearHistBy[K]) RecordN(c Ctx, key K, v, n Value) { h.recordKeyed(c, key, v, n) }

func (h *histDecl) recordKeyed(c Ctx, key Elem, v, n Value) {
	p := c.program()
	km, release := keyMem(p, key)
	defer release()
	h.record(p, km, true, v, n)
}
