package runtime

import (
	"fmt"
	"io"
	"strings"

	"github.com/cilium/ebpf"
)

// Histogram is one histogram read back from the kernel: a count per
// bucket.
type Histogram struct {
	Kind  HistKind
	Slots []uint64
	// Base and Step place linear buckets.
	Base, Step uint64
}

// Total is the number of samples.
func (h Histogram) Total() uint64 {
	var n uint64
	for _, v := range h.Slots {
		n += v
	}
	return n
}

// Range is the smallest and largest value bucket i holds.
func (h Histogram) Range(i int) (low, high uint64) {
	if h.Kind == Linear {
		return h.Base + uint64(i)*h.Step, h.Base + uint64(i+1)*h.Step - 1
	}
	low = (uint64(1) << (i + 1)) >> 1
	high = (uint64(1) << (i + 1)) - 1
	if low == high {
		low--
	}
	return low, high
}

// Print writes the histogram as bcc's libbpf-tools print it
// (print_log2_hist, print_linear_hist): a header naming unit, then one line
// per bucket up to the last non-empty one with its range, count and a bar
// of stars. Nothing is written for an empty histogram.
func (h Histogram) Print(w io.Writer, unit string) {
	if h.Kind == Linear {
		h.printLinear(w, unit)
		return
	}
	idxMax := -1
	var valMax uint64
	for i, v := range h.Slots {
		if v > 0 {
			idxMax = i
		}
		valMax = max(valMax, v)
	}
	if idxMax < 0 {
		return
	}
	pad, width, starsMax := 5, 19, 40
	if idxMax > 32 {
		pad, width, starsMax = 15, 29, 20
	}
	fmt.Fprintf(w, "%*s%-*s : count    distribution\n", pad, "", width, unit)
	numWidth := 10
	if idxMax > 32 {
		numWidth = 20
	}
	for i := 0; i <= idxMax; i++ {
		low, high := h.Range(i)
		fmt.Fprintf(w, "%*d -> %-*d : %-8d |%s|\n", numWidth, low, numWidth, high, h.Slots[i], stars(h.Slots[i], valMax, starsMax))
	}
}

func (h Histogram) printLinear(w io.Writer, unit string) {
	idxMin, idxMax := -1, -1
	var valMax uint64
	for i, v := range h.Slots {
		if v > 0 {
			idxMax = i
			if idxMin < 0 {
				idxMin = i
			}
		}
		valMax = max(valMax, v)
	}
	if idxMax < 0 {
		return
	}
	fmt.Fprintf(w, "     %-13s : count     distribution\n", unit)
	for i := idxMin; i <= idxMax; i++ {
		if h.Slots[i] == 0 {
			continue
		}
		low, _ := h.Range(i)
		fmt.Fprintf(w, "        %-10d : %-8d |%s|\n", low, h.Slots[i], stars(h.Slots[i], valMax, 40))
	}
}

// stars is bcc's print_stars: width scaled to max, "+" past it.
func stars(v, max uint64, width int) string {
	if max == 0 {
		return strings.Repeat(" ", width)
	}
	n := int(min(v, max) * uint64(width) / max)
	s := strings.Repeat("*", n) + strings.Repeat(" ", width-n)
	if v > max {
		s += "+"
	}
	return s
}

// HistMap is the user-space side of a loaded histogram without keys.
type HistMap struct {
	m    *ebpf.Map
	decl *histDecl
}

// histOf is implemented by the histogram declarations.
type histOf interface{ hist() *histDecl }

func (h *histDecl) hist() *histDecl { return h }

// OpenHist is the handle on objs' copy of the histogram decl (a *Log2Hist
// or *LinearHist).
func OpenHist(objs *Objects, decl interface{ hist() *histDecl }) (*HistMap, error) {
	d := decl.hist()
	m, err := objs.Map(d.name)
	if err != nil {
		return nil, err
	}
	return &HistMap{m: m, decl: d}, nil
}

// Histogram reads the buckets.
func (h *HistMap) Histogram() (Histogram, error) {
	slots := make([]uint64, h.decl.opts.Slots)
	if err := h.m.Lookup(uint32(0), &slots); err != nil {
		return Histogram{}, fmt.Errorf("histogram %s: %w", h.decl.name, err)
	}
	return h.decl.histogram(slots), nil
}

// Clear zeroes the buckets.
func (h *HistMap) Clear() error {
	return h.m.Update(uint32(0), make([]uint64, h.decl.opts.Slots), ebpf.UpdateAny)
}

func (h *histDecl) histogram(slots []uint64) Histogram {
	return Histogram{Kind: h.kind, Slots: slots, Base: h.opts.Base, Step: h.opts.Step}
}

// HistMapBy is the user-space side of a keyed histogram: K is the Go type
// of the declaration's key (uint32 for U32, X for XView).
type HistMapBy[K comparable] struct {
	m    *ebpf.Map
	decl *histDecl
}

// OpenHistBy is the handle on objs' copy of a keyed histogram decl.
func OpenHistBy[K comparable](objs *Objects, decl interface{ hist() *histDecl }) (*HistMapBy[K], error) {
	d := decl.hist()
	m, err := objs.Map(d.name)
	if err != nil {
		return nil, err
	}
	return &HistMapBy[K]{m: m, decl: d}, nil
}

// Histograms reads every key's buckets.
func (h *HistMapBy[K]) Histograms() (map[K]Histogram, error) {
	out := map[K]Histogram{}
	var k K
	slots := make([]uint64, h.decl.opts.Slots)
	it := h.m.Iterate()
	for it.Next(&k, &slots) {
		out[k] = h.decl.histogram(append([]uint64(nil), slots...))
	}
	return out, it.Err()
}

// Clear deletes every key.
func (h *HistMapBy[K]) Clear() error {
	var keys []K
	var next K
	err := h.m.NextKey(nil, &next)
	for err == nil {
		keys = append(keys, next)
		err = h.m.NextKey(next, &next)
	}
	for _, k := range keys {
		if err := h.m.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
