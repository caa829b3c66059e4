package btf

import (
	"sort"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// NearNames returns up to max names of types in spec accepted by keep that are
// close to name: the smallest edit distances first, then names that contain
// it. Only C identifiers are offered. It walks the whole spec (up to the
// first type that does not decode), so keep it for error paths.
func NearNames(spec Types, name string, max int, keep func(cbtf.Type) bool) []string {
	var names []string
	for t, err := range spec.All() {
		if err != nil {
			break
		}
		if n := t.TypeName(); IsCIdent(n) && keep(t) {
			names = append(names, n)
		}
	}
	return Nearest(name, names, max)
}

// Nearest picks up to max candidates close to name (edit distance at most a
// third of its length, or containing it), best first, without duplicates.
func Nearest(name string, candidates []string, max int) []string {
	type scored struct {
		s string
		d int
	}
	limit := len(name)/3 + 1
	seen := map[string]bool{}
	var hits []scored
	for _, c := range candidates {
		if seen[c] || c == name {
			continue
		}
		seen[c] = true
		if abs(len(c)-len(name)) <= limit {
			if d := distance(name, c); d <= limit {
				hits = append(hits, scored{c, d})
				continue
			}
		}
		if len(name) >= 4 && strings.Contains(c, name) {
			hits = append(hits, scored{c, limit + 1 + len(c) - len(name)})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].d != hits[j].d {
			return hits[i].d < hits[j].d
		}
		return hits[i].s < hits[j].s
	})
	var out []string
	for i := 0; i < len(hits) && i < max; i++ {
		out = append(out, hits[i].s)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours cost 1.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
