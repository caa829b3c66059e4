package vmtest

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// ParseLog2Hist reads the rows of log2 histograms printed as bcc's
// print_log2_hist prints them ("    8 -> 15     : 3    |***   |"), and
// adds their counts by bucket: slot i holds 2^i to 2^(i+1)-1 (slot 0 also
// 0). Lines that are not rows (headers, blank lines) are skipped, so a
// tool's whole output, several histograms of one kind, sums up.
func ParseLog2Hist(out string) ([]uint64, error) {
	var slots []uint64
	for _, line := range strings.Split(out, "\n") {
		rng, rest, ok := strings.Cut(line, " : ")
		lowS, highS, ok2 := strings.Cut(rng, " -> ")
		if !ok || !ok2 || !strings.Contains(rest, "|") {
			continue
		}
		low, err1 := strconv.ParseUint(strings.TrimSpace(lowS), 10, 64)
		high, err2 := strconv.ParseUint(strings.TrimSpace(highS), 10, 64)
		count, err3 := strconv.ParseUint(strings.TrimSpace(strings.SplitN(rest, "|", 2)[0]), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("bad histogram row %q", line)
		}
		i := bits.Len64(high) - 1
		if lo, _ := log2Range(i); lo != low {
			return nil, fmt.Errorf("histogram row %q is no log2 bucket", line)
		}
		for len(slots) <= i {
			slots = append(slots, 0)
		}
		slots[i] += count
	}
	return slots, nil
}

func log2Range(i int) (low, high uint64) {
	low, high = (uint64(1)<<(i+1))>>1, (uint64(1)<<(i+1))-1
	if low == high {
		low--
	}
	return low, high
}

// HistShift compares two histograms of the same samples timed twice (two
// tools on the same calls): moved is the fewest bucket moves that turn one
// into the other (the earth mover's distance, in buckets; the totals must
// be equal), and oneBucket reports whether they could be the same samples
// with none moved by more than one bucket.
func HistShift(a, b []uint64) (moved uint64, oneBucket bool) {
	n := max(len(a), len(b))
	at := func(h []uint64, i int) uint64 {
		if i < 0 || i >= len(h) {
			return 0
		}
		return h[i]
	}
	// Cumulative counts up to each bucket, one bucket past the end.
	ca, cb := make([]int64, n+1), make([]int64, n+1)
	var sa, sb int64
	for i := 0; i <= n; i++ {
		sa += int64(at(a, i))
		sb += int64(at(b, i))
		ca[i], cb[i] = sa, sb
	}
	oneBucket = true
	for i := 0; i <= n; i++ {
		d := ca[i] - cb[i]
		moved += uint64(max(d, -d))
		// Each sample moves at most one bucket exactly when neither
		// side's samples up to bucket i-1 outnumber the other's up to i.
		if i > 0 && (ca[i] < cb[i-1] || cb[i] < ca[i-1]) {
			oneBucket = false
		}
	}
	return moved, oneBucket
}
