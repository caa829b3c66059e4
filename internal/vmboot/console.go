package vmboot

import (
	"bufio"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Result is what one boot printed and how the guest's program exited.
type Result struct {
	// Release is the guest's uname -r ("" if it never said).
	Release string
	// Exit is the program's exit status, -1 without an exit marker.
	Exit int
	// Output is what the program printed (see parse).
	Output string
	// Elapsed is the boot's time, QEMU's start to its end.
	Elapsed time.Duration
}

var exitLine = regexp.MustCompile(markerExit + ` (-?\d+)`)

// parse keeps the lines between the kernel marker and the exit marker, and
// the exit status (-1 without an exit marker).
func parse(console string) Result {
	res := Result{Exit: -1}
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(console, "\r", "")))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		// The firmware's escape sequences may precede a marker on its line.
		if i := strings.Index(line, markerKernel+" "); i >= 0 {
			res.Release, started = strings.TrimSpace(line[i+len(markerKernel)+1:]), true
			continue
		}
		if m := exitLine.FindStringSubmatch(line); m != nil {
			res.Exit, _ = strconv.Atoi(m[1])
			break
		}
		if started || strings.Contains(line, "vminit") || strings.Contains(line, "Kernel panic") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	res.Output = strings.TrimSpace(b.String())
	if !started && res.Exit == -1 {
		// The program never started: the end of the console says why.
		res.Output = Tail(console, 40)
	}
	return res
}

// Tail is the last n lines of s, after a line saying how many came
// before.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append([]string{"[... " + strconv.Itoa(len(lines)-n) + " lines before these]"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
