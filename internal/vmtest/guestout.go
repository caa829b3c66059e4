package vmtest

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fentrygen/fentrygen/internal/vmboot"
)

// guestTest is what a guest's `go test -test.v` output says about one
// top-level test.
type guestTest struct {
	name string
	// result is PASS, FAIL or SKIP; "" when the test never finished.
	result string
	// elapsed is the test's duration as the guest reported it.
	elapsed time.Duration
	// output runs from the test's "=== RUN" line through its "--- RESULT"
	// line and the indented lines after it (its subtests' results).
	output string
}

// guestRun is a guest test binary's -test.v output, one block per
// top-level test.
type guestRun struct {
	tests map[string]*guestTest
	// order lists the tests in the order they started.
	order []string
	// finished says the binary printed its closing PASS or FAIL: it was not
	// cut short by a panic, a timeout or a kernel crash.
	finished bool
	// lines is the whole output, for the tail of a run cut short.
	lines []string
	// from is the index in lines of each test's "=== RUN" line.
	from map[string]int
}

var (
	runLine = regexp.MustCompile(`^=== (RUN|CONT|NAME|PAUSE) +(\S+)`)
	// A test's result line may follow output that did not end its line.
	doneLine = regexp.MustCompile(`--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)$`)
)

// splitTests splits -test.v output by top-level test. Everything at column
// 0 between "=== RUN   TestX" and "--- PASS: TestX (…)" is TestX's,
// including its subtests' "=== RUN" lines; after that line, indented lines
// are still TestX's (subtest results print after their parent's).
// "=== CONT" and "=== NAME" lines switch to the test they name.
func splitTests(output string) guestRun {
	run := guestRun{tests: map[string]*guestTest{}, from: map[string]int{}}
	if output != "" {
		run.lines = strings.Split(output, "\n")
	}
	var blocks = map[string]*strings.Builder{}
	var cur, trailer string
	for i, line := range run.lines {
		if m := runLine.FindStringSubmatch(line); m != nil {
			top, _, _ := strings.Cut(m[2], "/")
			if m[1] == "RUN" && top == m[2] && run.tests[top] == nil {
				run.tests[top] = &guestTest{name: top}
				run.order = append(run.order, top)
				run.from[top] = i
				blocks[top] = &strings.Builder{}
			}
			if run.tests[top] != nil {
				cur, trailer = top, ""
			}
		} else if m := doneLine.FindStringSubmatch(line); m != nil && run.tests[m[2]] != nil {
			t := run.tests[m[2]]
			t.result = m[1]
			secs, _ := strconv.ParseFloat(m[3], 64)
			t.elapsed = time.Duration(secs * float64(time.Second))
			blocks[m[2]].WriteString(line + "\n")
			cur, trailer = "", m[2]
			continue
		} else if line == "PASS" || line == "FAIL" {
			run.finished = true
			cur, trailer = "", ""
			continue
		}
		switch {
		case cur != "":
			blocks[cur].WriteString(line + "\n")
		case trailer != "" && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")):
			blocks[trailer].WriteString(line + "\n")
		default:
			trailer = ""
		}
	}
	for name, b := range blocks {
		run.tests[name].output = strings.TrimRight(b.String(), "\n")
	}
	return run
}

// cutShort is, for a run that did not finish, the test that was running
// when it stopped (the last one started) and the tail of the output from
// that test's start.
func (r guestRun) cutShort() (name, out string) {
	if r.finished || len(r.order) == 0 {
		return "", ""
	}
	name = r.order[len(r.order)-1]
	return name, vmboot.Tail(strings.Join(r.lines[r.from[name]:], "\n"), 200)
}
