package vmtest

import (
	"math/bits"
	"regexp"
)

// ParseLog2Hist reads the log2 histograms of a tool's output (see
// [ParseHists]) and adds their counts by bucket: slot i holds 2^i to
// 2^(i+1)-1 (slot 0 also 0), so a tool's whole output, several
// histograms of one kind, sums up.
func ParseLog2Hist(out string) ([]uint64, error) {
	hists, err := ParseHists(out)
	if err != nil {
		return nil, err
	}
	var slots []uint64
	for _, h := range hists {
		for low, n := range h.Counts {
			i := 0
			if low > 1 {
				i = bits.Len64(low) - 1
			}
			for len(slots) <= i {
				slots = append(slots, 0)
			}
			slots[i] += n
		}
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
// tools on the same calls, equal totals). moved is the fewest bucket moves
// that turn one into the other (the earth mover's distance, in buckets);
// far is the fewest samples that must move more than one bucket (0 when
// they could be the same samples, none more than a bucket apart).
func HistShift(a, b []uint64) (moved, far uint64) {
	n := max(len(a), len(b))
	at := func(h []uint64, i int) uint64 {
		if i < 0 || i >= len(h) {
			return 0
		}
		return h[i]
	}
	var ca, cb int64
	for i := range n {
		ca += int64(at(a, i))
		cb += int64(at(b, i))
		moved += uint64(max(ca-cb, cb-ca))
	}
	// Match a's samples at bucket i with b's at i-1, i, i+1, in that
	// order: earliest first is a largest matching for windows that slide
	// the same way. What stays unmatched in a must move further.
	left := make([]uint64, n+1) // b's samples not matched yet
	for i := range n {
		left[i] = at(b, i)
	}
	for i := range n {
		need := at(a, i)
		for j := max(i-1, 0); j <= i+1 && need > 0; j++ {
			m := min(need, left[j])
			left[j] -= m
			need -= m
		}
		far += need
	}
	return moved, far
}

// histRowLine is one row of print_log2_hist's narrow form (at most 33 buckets):
// "%10llu -> %-10llu : %-8u |" then 40 stars or spaces and "|".
var histRowLine = regexp.MustCompile(`(?m)^[ \d]{10} -> [\d ]{10} : [\d ]{8} \|[* ]{40}\|\n`)

// WithoutHistRows is out without the rows of its log2 histograms: what two
// tools print the same when their histograms differ.
func WithoutHistRows(out string) string { return histRowLine.ReplaceAllString(out, "") }
