package vmboot

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestStartWatch: the kernel marker and a kernel's failure report are seen
// across the writes the console comes in, and the failure is told once.
func TestStartWatch(t *testing.T) {
	var reports []string
	w := &startWatch{failed: func(r string) { reports = append(reports, r) }}
	for _, chunk := range []string{"SeaBIOS\r\n", markerKernel[:3], markerKernel[3:] + " 6.1.0\r\n", "=== RUN   TestX\r\n"} {
		w.Write([]byte(chunk))
	}
	assert.True(t, w.started.Load())
	assert.Empty(t, reports)
	for _, chunk := range []string{"[   32.5] watchdog: BUG: soft ", "lockup - CPU#0 stuck for 26s! [rcu_tasks_kthre:11]\r\n", "[ 60.1] watchdog: BUG: soft lockup - CPU#0 stuck for 52s!\r\n"} {
		w.Write([]byte(chunk))
	}
	assert.Len(t, reports, 1)
	assert.Contains(t, reports[0], "BUG: soft lockup - CPU#0 stuck for 26s!")

	quiet := &startWatch{failed: func(r string) { t.Errorf("reported %q", r) }}
	quiet.Write([]byte("PASS\r\nok\r\n"))
	assert.False(t, quiet.started.Load())
}
