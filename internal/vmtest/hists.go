package vmtest

import (
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
)

// PrintedHist is one log2 histogram as libbpf-tools print it
// (print_log2_hist), read back from a tool's output.
type PrintedHist struct {
	// Title is the non-empty line just before the header ("backlog_max =
	// 16"), or "" when there is none.
	Title string
	// Unit is the header's unit ("usecs").
	Unit string
	// Counts are the non-zero buckets' counts by their low value.
	Counts map[uint64]uint64
	// Text is the title, header and rows as printed, one line each.
	Text string
}

// Total is the number of samples.
func (h PrintedHist) Total() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

var (
	histHeader = regexp.MustCompile(`^ {5,15}(\S+) +: count    distribution$`)
	histRow    = regexp.MustCompile(`^ *(\d+) -> (\d+) +: (\d+) +\|[* ]*\|$`)
)

// ParseHists reads every log2 histogram out of a tool's output, in order.
func ParseHists(out string) ([]PrintedHist, error) {
	var hists []PrintedHist
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		m := histHeader.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		h := PrintedHist{Unit: m[1], Counts: map[uint64]uint64{}}
		text := []string{lines[i]}
		if i > 0 && lines[i-1] != "" && !histRow.MatchString(lines[i-1]) {
			h.Title = lines[i-1]
			text = append([]string{h.Title}, text...)
		}
		for i+1 < len(lines) {
			r := histRow.FindStringSubmatch(lines[i+1])
			if r == nil {
				break
			}
			i++
			text = append(text, lines[i])
			low, _ := strconv.ParseUint(r[1], 10, 64)
			high, _ := strconv.ParseUint(r[2], 10, 64)
			n, err := strconv.ParseUint(r[3], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("histogram row %q: %w", lines[i], err)
			}
			if lo, hi := log2Range(bits.Len64(high) - 1); lo != low || hi != high {
				return nil, fmt.Errorf("histogram row %q is no log2 bucket", lines[i])
			}
			if n > 0 {
				h.Counts[low] = n
			}
		}
		if len(text) == 1 || len(text) == 2 && h.Title != "" {
			return nil, fmt.Errorf("histogram header %q without rows", lines[i])
		}
		h.Text = strings.Join(text, "\n")
		hists = append(hists, h)
	}
	return hists, nil
}
