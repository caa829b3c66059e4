package tcpsynbl_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/bits"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/tcpsynbl"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("tcpsynbl")) }

// backlogs reads tcpsynbl's output: the histogram text of each
// backlog_max, checking the first line.
func backlogs(t *testing.T, out string) map[string]vmtest.PrintedHist {
	t.Helper()
	require.True(t, strings.HasPrefix(out, "Tracing SYN backlog size. Ctrl-C to end.\n"), out)
	hists, err := vmtest.ParseHists(out)
	require.NoError(t, err)
	byTitle := map[string]vmtest.PrintedHist{}
	for _, h := range hists {
		require.Equal(t, "backlog", h.Unit)
		require.NotContains(t, byTitle, h.Title, "one print: each backlog_max once")
		byTitle[h.Title] = h
	}
	return byTitle
}

// want is the histogram of backlogs 0 to n-1: the k-th handshake to
// complete finds k-1 connections waiting to be accepted.
func want(n int) map[uint64]uint64 {
	m := map[uint64]uint64{}
	for v := range n {
		low := uint64(0)
		if v > 1 {
			low = 1 << (bits.Len(uint(v)) - 1)
		}
		m[low]++
	}
	return m
}

// TestVMSideBySide runs the port and Debian's libbpf-tools tcpsynbl in the
// same guest while an IPv4 listener with backlog 16 gets 10 connections
// and an IPv6 one with backlog 8 gets 5, none accepted: with no flags, with
// -4 and with -6. Both print backlog_max = 16 with backlogs 0 to 9 (but
// with -6) and backlog_max = 8 with 0 to 4 (but with -4) (ground truth),
// and the same histograms to the character: the values are the kernel's,
// not timings (no tolerance). On 6.1 neither can use fentry on the
// 7-argument syn_recv_sock functions: the original falls back to kprobes,
// the port to fentry on inet_csk_complete_hashdance; the summary names the
// links each holds.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		warm, err := tcpsynbl.Load(runtime.Options{Only: []string{"onQueue"}})
		require.NoError(t, err)
		require.NoError(t, warm.Close())
		type listener struct{ family, backlog, conns int }
		workload := []listener{{unix.AF_INET, 16, 10}, {unix.AF_INET6, 8, 5}}
		var summary []string
		for _, flag := range []string{"", "-4", "-6"} {
			args, links := []string{}, 2 // the IPv4 and IPv6 programs
			if flag != "" {
				args, links = []string{flag}, 1
			}
			c := vmtest.StartTool(t, "tcpsynbl", links, args...)
			var ours bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			done, attached := make(chan error, 1), make(chan struct{})
			opts := tcpsynbl.Options{IPv4: flag == "-4", IPv6: flag == "-6", Attached: func() { close(attached) }}
			go func() { done <- tcpsynbl.Run(ctx, &ours, opts) }()
			select {
			case <-attached:
			case err := <-done:
				require.NoError(t, err)
			}
			ourLinks, theirLinks := strings.Join(vmtest.Links(os.Getpid()), ", "), strings.Join(vmtest.Links(c.Pid()), ", ")

			for _, l := range workload {
				_, port := vmtest.ListenBacklog(t, l.family, l.backlog)
				for range l.conns {
					_, err := vmtest.ConnectHeld(t, l.family, port)
					require.NoError(t, err)
				}
			}

			theirs := c.Interrupt(t)
			cancel()
			require.NoError(t, <-done)
			t.Logf("tcpsynbl %s\nfentrygen:\n%s\nlibbpf-tools:\n%s", flag, ours.String(), theirs)
			o, c2 := backlogs(t, ours.String()), backlogs(t, theirs)
			var figures []string
			for _, l := range workload {
				title := fmt.Sprintf("backlog_max = %d", l.backlog)
				if flag == "-4" && l.family != unix.AF_INET || flag == "-6" && l.family != unix.AF_INET6 {
					assert.NotContains(t, o, title, "fentrygen %s", flag)
					assert.NotContains(t, c2, title, "libbpf-tools %s", flag)
					continue
				}
				assert.Equal(t, want(l.conns), o[title].Counts, "fentrygen %s %s", flag, title)
				assert.Equal(t, want(l.conns), c2[title].Counts, "libbpf-tools %s %s", flag, title)
				figures = append(figures, fmt.Sprintf("%s: %d/%d samples", title, o[title].Total(), c2[title].Total()))
			}
			assert.Equal(t, slices.Sorted(maps.Keys(c2)), slices.Sorted(maps.Keys(o)), "the same listeners")
			for title, h := range c2 {
				assert.Equal(t, h.Text, o[title].Text, "the same histogram, character for character")
			}
			summary = append(summary, fmt.Sprintf("tcpsynbl %s [fentrygen: %s; libbpf-tools: %s] %s", cmp.Or(flag, "(no flag)"), ourLinks, theirLinks, strings.Join(figures, ", ")))
		}
		vmtest.Summary(t, "side-by-side tcpsynbl on %s: fentrygen | libbpf-tools: %s | agree exactly (tcp4 backlog 16 x10, tcp6 backlog 8 x5, no accept)",
			runtime.KernelRelease(), strings.Join(summary, "; "))
	})
}

// TestVMCount runs the port and the original with -T 1 2 and no
// handshakes to count: each stops by itself after two prints, each a blank
// line and the time.
func TestVMCount(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		c := vmtest.StartTool(t, "tcpsynbl", 2, "-T", "1", "2")
		var out bytes.Buffer
		require.NoError(t, tcpsynbl.Run(context.Background(), &out, tcpsynbl.Options{Timestamp: true, Interval: 1, Count: 2}))
		theirs := c.Wait(t)
		t.Logf("fentrygen:\n%s\nlibbpf-tools:\n%s", out.String(), theirs)
		shape := func(s string) string {
			return regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d$`).ReplaceAllString(s, "HH:MM:SS")
		}
		want := "Tracing SYN backlog size. Ctrl-C to end.\n\nHH:MM:SS\n\nHH:MM:SS\n"
		assert.Equal(t, want, shape(out.String()), "fentrygen")
		assert.Equal(t, want, shape(theirs), "libbpf-tools")
	})
}
