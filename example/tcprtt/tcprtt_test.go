package tcprtt_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/tcprtt"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Tools("tcprtt")) }

// rtts reads tcprtt's output (one print): the histograms by title line.
func rtts(t *testing.T, out, unit string) map[string]vmtest.PrintedHist {
	t.Helper()
	require.True(t, strings.HasPrefix(out, "Tracing TCP RTT... Hit Ctrl-C to end.\n\n"), out)
	hists, err := vmtest.ParseHists(out)
	require.NoError(t, err)
	byTitle := map[string]vmtest.PrintedHist{}
	for _, h := range hists {
		require.Equal(t, unit, h.Unit)
		require.NotContains(t, byTitle, h.Title)
		byTitle[h.Title] = h
	}
	return byTitle
}

// session runs the original with args and the port with opts over
// workload, both attached before it starts and stopped (SIGINT, ctx)
// after it ends, and returns what each printed.
func session(t *testing.T, args []string, opts tcprtt.Options, workload func()) (ours, theirs string) {
	t.Helper()
	c := vmtest.StartTool(t, "tcprtt", 1, args...)
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done, attached := make(chan error, 1), make(chan struct{})
	opts.Attached = func() { close(attached) }
	go func() { done <- tcprtt.Run(ctx, &out, opts) }()
	select {
	case <-attached:
	case err := <-done:
		require.NoError(t, err)
	}
	workload()
	// Delayed ACKs (40 ms and up) land before both stop.
	time.Sleep(500 * time.Millisecond)
	theirs = c.Interrupt(t)
	cancel()
	require.NoError(t, <-done)
	t.Logf("tcprtt %s\nfentrygen:\n%s\nlibbpf-tools:\n%s", strings.Join(args, " "), out.String(), theirs)
	return out.String(), theirs
}

// TestVMSideBySide runs the port and Debian's libbpf-tools tcprtt in the
// same guest over loopback ping-pongs of n round trips, twice: with no
// flags (every socket: the server's and the client's receives, at least
// 2n samples), then with -P (the client's receives, at least n) -A, -B and
// -e, then with -m and -e. The values are the kernel's smoothed RTTs, not timings: the
// histograms and averages agree to the character (no tolerance). The
// guest has no other TCP traffic.
func TestVMSideBySide(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n = 200
		warm, err := tcprtt.Load(runtime.Options{})
		require.NoError(t, err)
		require.NoError(t, warm.Close())
		var summary []string

		port := vmtest.Echo(t)
		ours, theirs := session(t, nil, tcprtt.Options{}, func() { vmtest.PingPong(t, port, n) })
		o, c := rtts(t, ours, "usecs"), rtts(t, theirs, "usecs")
		const all = "All Addresses = ****** "
		require.Equal(t, []string{all}, slices.Collect(maps.Keys(o)), "fentrygen")
		require.Equal(t, []string{all}, slices.Collect(maps.Keys(c)), "libbpf-tools")
		assert.GreaterOrEqual(t, o[all].Total(), uint64(2*n), "fentrygen: each end receives n segments")
		assert.Equal(t, c[all].Text, o[all].Text, "the same histogram, character for character")
		summary = append(summary, fmt.Sprintf("all: %d/%d samples", o[all].Total(), c[all].Total()))

		port = vmtest.Echo(t)
		args := []string{"-P", fmt.Sprint(port), "-A", "127.0.0.1", "-B", "-e"}
		opts := tcprtt.Options{Rport: port, Raddr: netip.MustParseAddr("127.0.0.1"), ByRaddr: true, Extended: true}
		ours, theirs = session(t, args, opts, func() { vmtest.PingPong(t, port, n) })
		o, c = rtts(t, ours, "usecs"), rtts(t, theirs, "usecs")
		require.Len(t, o, 1, "fentrygen: one remote address")
		require.Len(t, c, 1, "libbpf-tools: one remote address")
		title := slices.Collect(maps.Keys(o))[0]
		assert.Regexp(t, `^Remote Address = 127\.0\.0\.1 \[AVG \d+\]$`, title)
		assert.GreaterOrEqual(t, o[title].Total(), uint64(n), "fentrygen: the client receives n segments")
		assert.Equal(t, c[title].Text, o[title].Text, "the same histogram and average, character for character")
		summary = append(summary, fmt.Sprintf("-P -A -B -e: %q %d/%d samples", title, o[title].Total(), c[title].Total()))

		port = vmtest.Echo(t)
		ours, theirs = session(t, []string{"-m", "-e"}, tcprtt.Options{Millisec: true, Extended: true}, func() { vmtest.PingPong(t, port, n) })
		o, c = rtts(t, ours, "msecs"), rtts(t, theirs, "msecs")
		require.Len(t, o, 1, "fentrygen: all addresses")
		require.Len(t, c, 1, "libbpf-tools: all addresses")
		title = slices.Collect(maps.Keys(o))[0]
		assert.Regexp(t, `^All Addresses = \*{6} \[AVG \d+\]$`, title)
		assert.GreaterOrEqual(t, o[title].Total(), uint64(2*n), "fentrygen")
		assert.Equal(t, c[title].Text, o[title].Text, "the same histogram and average, character for character")
		summary = append(summary, fmt.Sprintf("-m -e: %q %d/%d samples", title, o[title].Total(), c[title].Total()))

		vmtest.Summary(t, "side-by-side tcprtt on %s: fentrygen | libbpf-tools: %s | agree exactly (loopback ping-pong x%d)", runtime.KernelRelease(), strings.Join(summary, ", "), n)
	})
}

// TestVMLocalFilters runs the port with the flags Debian's v0.26 tcprtt
// cannot load on these kernels (its fentry program reads inet_sock
// members through a struct sock pointer, which the verifier refuses): -p
// (the server's receives, at least n samples), -a and -b. The original's
// refusal is checked too, so that a fixed original is noticed.
func TestVMLocalFilters(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n = 100
		port := vmtest.Echo(t)
		for _, args := range [][]string{{"-p", fmt.Sprint(port)}, {"-a", "127.0.0.1"}, {"-b"}} {
			out, err := vmtest.Tool("tcprtt", args...).CombinedOutput()
			assert.Error(t, err, "tcprtt %s", args)
			assert.Contains(t, string(out), "failed to load BPF object", "tcprtt %s", args)
		}

		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done, attached := make(chan error, 1), make(chan struct{})
		opts := tcprtt.Options{Lport: port, Laddr: netip.MustParseAddr("127.0.0.1"), ByLaddr: true, Attached: func() { close(attached) }}
		go func() { done <- tcprtt.Run(ctx, &out, opts) }()
		<-attached
		vmtest.PingPong(t, port, n)
		time.Sleep(500 * time.Millisecond)
		cancel()
		require.NoError(t, <-done)
		t.Logf("fentrygen -p %d -a 127.0.0.1 -b:\n%s", port, out.String())
		o := rtts(t, out.String(), "usecs")
		const title = "Local Address = 127.0.0.1 "
		require.Equal(t, []string{title}, slices.Collect(maps.Keys(o)))
		assert.GreaterOrEqual(t, o[title].Total(), uint64(n), "the server receives n segments")
		vmtest.Summary(t, "tcprtt -p -a -b on %s: fentrygen %q %d samples for %d round trips (the original cannot load these flags)", runtime.KernelRelease(), title, o[title].Total(), n)
	})
}

// TestVMDuration runs the port and the original with -i 1 -d 2 -T and no
// traffic to count: each stops by itself at the first print past 2
// seconds, after printing a blank line and the time each second.
func TestVMDuration(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		c := vmtest.StartTool(t, "tcprtt", 1, "-i", "1", "-d", "2", "-T")
		var out bytes.Buffer
		require.NoError(t, tcprtt.Run(context.Background(), &out, tcprtt.Options{Interval: 1, Duration: 2, Timestamp: true}))
		theirs := c.Wait(t)
		t.Logf("fentrygen:\n%s\nlibbpf-tools:\n%s", out.String(), theirs)
		shape := func(s string) string {
			return regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d$`).ReplaceAllString(s, "HH:MM:SS")
		}
		want := "Tracing TCP RTT for 2 secs.\n\nHH:MM:SS\n\nHH:MM:SS\n"
		assert.Equal(t, want, shape(out.String()), "fentrygen")
		assert.Equal(t, want, shape(theirs), "libbpf-tools")
	})
}
