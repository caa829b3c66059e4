package vmtest

import (
	"bufio"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// result is what one boot printed and how the guest's program exited.
type result struct {
	release string
	exit    int
	output  string
	elapsed time.Duration
}

var exitLine = regexp.MustCompile(markerExit + ` (-?\d+)`)

// parse keeps the lines between the kernel marker and the exit marker, and
// the exit status (-1 without an exit marker).
func parse(console string) result {
	res := result{exit: -1}
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(console, "\r", "")))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		// The firmware's escape sequences may precede a marker on its line.
		if i := strings.Index(line, markerKernel+" "); i >= 0 {
			res.release, started = strings.TrimSpace(line[i+len(markerKernel)+1:]), true
			continue
		}
		if m := exitLine.FindStringSubmatch(line); m != nil {
			res.exit, _ = strconv.Atoi(m[1])
			break
		}
		if started || strings.Contains(line, "vminit") || strings.Contains(line, "Kernel panic") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	res.output = strings.TrimSpace(b.String())
	if res.output == "" && res.exit == -1 {
		res.output = tail(console, 40)
	}
	return res
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append([]string{"[... " + strconv.Itoa(len(lines)-n) + " lines before these]"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

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
	return name, tail(strings.Join(r.lines[r.from[name]:], "\n"), 200)
}
