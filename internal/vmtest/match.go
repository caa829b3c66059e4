package vmtest

import (
	"flag"
	"regexp"
)

// The host's -test.run and -test.skip, passed to the guest, where every
// TestVM* test runs unless they would not have selected it.
const (
	envRun  = "FENTRYGEN_VM_RUN"
	envSkip = "FENTRYGEN_VM_SKIP"
)

// hostFlag is the value of the test binary's flag -test.NAME ("" if unset).
func hostFlag(name string) string {
	if f := flag.Lookup("test." + name); f != nil {
		return f.Value.String()
	}
	return ""
}

// selects reports whether go test's -test.run=run and -test.skip=skip
// select the top-level test called name, as the testing package decides
// it: each pattern is split into alternatives at '|' and into one regexp
// per level at '/' (outside brackets and parentheses); a top-level test
// runs when the first element of some run alternative matches it, and is
// skipped when the first skip alternative matching it has just one element.
func selects(run, skip, name string) (bool, error) {
	if run != "" {
		ok := false
		for _, alt := range splitPattern(run) {
			m, err := regexp.MatchString(alt[0], name)
			if err != nil {
				return false, err
			}
			if m {
				ok = true
				break
			}
		}
		if !ok {
			return false, nil
		}
	}
	if skip != "" {
		for _, alt := range splitPattern(skip) {
			m, err := regexp.MatchString(alt[0], name)
			if err != nil {
				return false, err
			}
			if m {
				return len(alt) > 1, nil
			}
		}
	}
	return true, nil
}

// splitPattern splits a -test.run pattern as testing's splitRegexp does:
// into alternatives at '|', each into elements at '/'.
func splitPattern(s string) [][]string {
	var alts [][]string
	var elems []string
	brackets, parens := 0, 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '[':
			brackets++
		case ']':
			if brackets--; brackets < 0 { // An unmatched ']' is legal.
				brackets = 0
			}
		case '(':
			if brackets == 0 {
				parens++
			}
		case ')':
			if brackets == 0 {
				parens--
			}
		case '\\':
			i++
		case '/', '|':
			if brackets == 0 && parens == 0 {
				elems = append(elems, s[:i])
				if s[i] == '|' {
					alts = append(alts, elems)
					elems = nil
				}
				s = s[i+1:]
				i = 0
				continue
			}
		}
		i++
	}
	return append(alts, append(elems, s))
}
