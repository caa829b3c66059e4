package vmtest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/vmboot"
)

func TestMain(m *testing.M) { Main(m, Tools("vfsstat"), Ext4()) }

// TestVMGuestBasics proves the harness itself: the guest is a different
// kernel, loopback is up, and bpffs is mounted.
func TestVMGuestBasics(t *testing.T) {
	Run(t, func(t *testing.T) {
		var u unix.Utsname
		require.NoError(t, unix.Uname(&u))
		release := string(bytes.TrimRight(u.Release[:], "\x00"))
		assert.Equal(t, os.Getenv(EnvInVM), release)
		assert.NotEmpty(t, vmboot.SeriesOf(release), "release %s is of no series in the table", release)
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs("/sys/fs/bpf", &st))
		assert.Equal(t, int64(unix.BPF_FS_MAGIC), int64(st.Type))
		_, err := os.Stat("/sys/kernel/btf/vmlinux")
		assert.NoError(t, err)
		t.Logf("guest kernel %s (series %s)", release, vmboot.SeriesOf(release))
	})
}

// TestVMTool runs Debian's vfsstat (libbpf-tools, packed by Tools) in the
// guest for one one-second interval.
func TestVMTool(t *testing.T) {
	Run(t, func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := Tool("vfsstat", "1", "1")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		require.Len(t, lines, 2, "a header and one interval:\n%s", stdout.String())
		assert.Equal(t, []string{"TIME", "READ/s", "WRITE/s", "FSYNC/s", "OPEN/s", "CREATE/s"}, strings.Fields(lines[0]))
		t.Logf("vfsstat 1 1:\n%s", stdout.String())

		err := Tool("no-such-tool").Run()
		assert.ErrorContains(t, err, "the guest has no /usr/sbin/no-such-tool")
	})
}

// TestVMExt4 writes, syncs and reads back a file on the guest's ext4 disk
// (Ext4).
func TestVMExt4(t *testing.T) {
	Run(t, func(t *testing.T) {
		dir := Ext4Dir()
		require.NotEmpty(t, dir, "no ext4 filesystem mounted")
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs(dir, &st))
		assert.Equal(t, int64(unix.EXT4_SUPER_MAGIC), int64(st.Type))

		want := bytes.Repeat([]byte("fentrygen on ext4\n"), 1000)
		p := filepath.Join(dir, "hello")
		f, err := os.Create(p)
		require.NoError(t, err)
		_, err = f.Write(want)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "read back what was written")
		require.NoError(t, unix.Statfs(p, &st))
		assert.Equal(t, int64(unix.EXT4_SUPER_MAGIC), int64(st.Type))
	})
}

func TestToolOnHost(t *testing.T) {
	err := Tool("vfsstat").Run()
	assert.ErrorContains(t, err, "vmtest.Tools")
	assert.Empty(t, Ext4Dir())
}

// chatty is what `go test -test.v` prints for a failing test with
// subtests, a skipped test, a test with a parallel subtest and a passing
// one.
const chatty = `=== RUN   TestVMA
    x_test.go:6: hello
=== RUN   TestVMA/sub
    x_test.go:7: bad
=== RUN   TestVMA/sub2
    x_test.go:8: nah
=== NAME  TestVMA
    x_test.go:9: after
--- FAIL: TestVMA (0.25s)
    --- FAIL: TestVMA/sub (0.00s)
    --- SKIP: TestVMA/sub2 (0.00s)
=== RUN   TestVMB
    x_test.go:11: skipping
--- SKIP: TestVMB (0.00s)
=== RUN   TestVMC
=== RUN   TestVMC/p
=== PAUSE TestVMC/p
=== NAME  TestVMC
    x_test.go:12: x
=== CONT  TestVMC/p
    x_test.go:12: par
--- PASS: TestVMC (1.50s)
    --- PASS: TestVMC/p (0.00s)
=== RUN   TestVMD
no newline--- PASS: TestVMD (0.00s)`

func TestSplitTests(t *testing.T) {
	run := splitTests(chatty + "\nFAIL")
	assert.True(t, run.finished)
	assert.Equal(t, []string{"TestVMA", "TestVMB", "TestVMC", "TestVMD"}, run.order)

	a := run.tests["TestVMA"]
	assert.Equal(t, "FAIL", a.result)
	assert.Equal(t, 250*time.Millisecond, a.elapsed)
	assert.True(t, strings.HasPrefix(a.output, "=== RUN   TestVMA\n"), a.output)
	assert.True(t, strings.HasSuffix(a.output, "\n    --- SKIP: TestVMA/sub2 (0.00s)"), a.output)
	assert.Contains(t, a.output, "x_test.go:9: after")
	assert.NotContains(t, a.output, "TestVMB")

	assert.Equal(t, "SKIP", run.tests["TestVMB"].result)
	assert.Equal(t, "=== RUN   TestVMB\n    x_test.go:11: skipping\n--- SKIP: TestVMB (0.00s)", run.tests["TestVMB"].output)
	c := run.tests["TestVMC"]
	assert.Equal(t, "PASS", c.result)
	assert.Contains(t, c.output, "x_test.go:12: par")
	assert.True(t, strings.HasSuffix(c.output, "--- PASS: TestVMC/p (0.00s)"), c.output)
	assert.Equal(t, "PASS", run.tests["TestVMD"].result)
	name, _ := run.cutShort()
	assert.Empty(t, name, "a finished run has no culprit")
}

func TestSplitTestsCutShort(t *testing.T) {
	// TestVMD panics: testing reports it failed, then the binary dies.
	run := splitTests(chatty + "\n=== RUN   TestVME\n--- FAIL: TestVME (0.00s)\npanic: boom [recovered]\n\tpanic: boom\n\ngoroutine 7 [running]:\nmain.f()")
	assert.False(t, run.finished)
	name, out := run.cutShort()
	assert.Equal(t, "TestVME", name)
	assert.True(t, strings.HasPrefix(out, "=== RUN   TestVME\n"), out)
	assert.Contains(t, out, "panic: boom")
	assert.NotContains(t, run.tests["TestVME"].output, "goroutine", "the panic is no part of the block")

	// The kernel stops in the middle of TestVME.
	run = splitTests(chatty + "\n=== RUN   TestVME\n    e_test.go:3: working\n[   12.5] Kernel panic - not syncing: oops")
	name, out = run.cutShort()
	assert.Equal(t, "TestVME", name)
	assert.Contains(t, out, "working")
	assert.Contains(t, out, "Kernel panic")
}

func TestVerdict(t *testing.T) {
	k := vmboot.Kernel{Name: "6.1", Package: "linux-image-6.1.0-56-cloud-amd64"}
	boot := func(output string, exit int, err error) *kernelBoot {
		return &kernelBoot{res: vmboot.Result{Release: "6.1.0-56-cloud-amd64", Exit: exit, Output: output}, err: err, run: splitTests(output)}
	}
	finished := boot(chatty+"\nFAIL", 1, nil)
	for top, want := range map[string]string{"TestVMA": failed, "TestVMB": skipped, "TestVMC": passed, "TestVMD": passed} {
		assert.Equal(t, want, finished.verdict(top, k).word, top)
	}
	v := finished.verdict("TestVMA", k)
	assert.Contains(t, v.msg, "in the guest (Linux 6.1.0-56-cloud-amd64) the test failed:\n=== RUN   TestVMA\n")
	assert.Contains(t, finished.verdict("TestVMB", k).msg, "skipping")
	assert.Contains(t, finished.verdict("TestVMC", k).msg, "ran on Linux 6.1.0-56-cloud-amd64 (linux-image-6.1.0-56-cloud-amd64) in 1.5s")
	assert.Equal(t, 1500*time.Millisecond, finished.verdict("TestVMC", k).elapsed)

	// The guest binary panicked in TestVMC: TestVMA and TestVMB keep what
	// they said, TestVMC gets the tail, TestVMD never ran.
	cut := chatty[:strings.Index(chatty, "--- PASS: TestVMC")] + "panic: test timed out after 4m30s\n\trunning tests:\n\t\tTestVMC (4m30s)"
	died := boot(cut, 2, nil)
	assert.Equal(t, failed, died.verdict("TestVMA", k).word)
	assert.Equal(t, skipped, died.verdict("TestVMB", k).word)
	v = died.verdict("TestVMC", k)
	assert.Equal(t, failed, v.word)
	assert.Contains(t, v.msg, "the test binary died during TestVMC (exit status 2)")
	assert.Contains(t, v.msg, "panic: test timed out")
	v = died.verdict("TestVMD", k)
	assert.Equal(t, failed, v.word)
	assert.Equal(t, "TestVMD never ran in the guest (Linux 6.1.0-56-cloud-amd64): the test binary died during TestVMC, before it (see that test's failure)", v.msg)

	noBoot := boot("[ 0.5] Kernel panic - not syncing: no init", -1, errors.New("no FENTRYGEN-VM-EXIT line: the guest did not finish"))
	v = noBoot.verdict("TestVMA", k)
	assert.Equal(t, failed, v.word)
	assert.Contains(t, v.msg, "boot linux-image-6.1.0-56-cloud-amd64: no FENTRYGEN-VM-EXIT line")
	assert.Contains(t, v.msg, "Kernel panic")
}

func TestSelects(t *testing.T) {
	for _, c := range []struct {
		run, skip, name string
		want            bool
	}{
		{"", "", "TestVMA", true},
		{"TestVMA", "", "TestVMA", true},
		{"TestVMA", "", "TestVMAB", true},
		{"^TestVMA$", "", "TestVMAB", false},
		{"TestVMB", "", "TestVMA", false},
		{"TestVMA/6.1", "", "TestVMA", true},
		{"TestVMB/6.1|TestVMA", "", "TestVMA", true},
		{"Test(VMA|VMB)/x", "", "TestVMB", true},
		{"Test[/]VMA", "", "TestVMA", false},
		{"", "TestVMA", "TestVMA", false},
		{"", "TestVMA/6.1", "TestVMA", true},
		{"", "TestVMB|TestVMA", "TestVMA", false},
		{"TestVM", "A", "TestVMA", false},
	} {
		got, err := selects(c.run, c.skip, c.name)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "-run=%q -skip=%q %s", c.run, c.skip, c.name)
	}
	_, err := selects("(", "", "TestVMA")
	assert.Error(t, err)
	assert.Equal(t, [][]string{{"a", "b"}, {"c"}, {"d(e/f|g)", "[/|]"}}, splitPattern(`a/b|c|d(e/f|g)/[/|]`))
}

// TestKernelBTF decompresses each test kernel and reads its BTF.
func TestKernelBTF(t *testing.T) {
	for name, spec := range KernelBTFs(t) {
		_, err := spec.AnyTypeByName("tcp_v4_connect")
		assert.NoError(t, err, name)
	}
}
