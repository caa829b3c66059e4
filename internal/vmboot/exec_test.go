package vmboot

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeries(t *testing.T) {
	for release, want := range map[string]string{
		"6.1.0-56-cloud-amd64":       "6.1",
		"6.12.117+deb12-cloud-amd64": "6.12",
		"7.3.4+deb13-cloud-amd64":    "7.x",
		"7.2.13+deb14-cloud-amd64":   "7.x",
		"6.18.1-amd64":               "",
		"8.0.1":                      "",
	} {
		assert.Equal(t, want, SeriesOf(release), release)
	}
	all, err := SelectSeries("")
	require.NoError(t, err)
	assert.Equal(t, AllSeries(), all)
	some, err := SelectSeries("7.x, 6.1")
	require.NoError(t, err)
	require.Len(t, some, 2)
	assert.Equal(t, "7.x", some[0].Name)
	assert.Equal(t, "6.1", some[1].Name)
	_, err = SelectSeries("6.1,5.10")
	assert.ErrorContains(t, err, `no kernel series "5.10" (have 6.1, 6.12, 7.x)`)
}

// TestPrivateApt: the private configuration points apt at files of its
// own for everything the host's apt keeps: sources, preferences, lists,
// dpkg status and package cache.
func TestPrivateApt(t *testing.T) {
	var host *privateApt
	assert.Empty(t, host.options(), "nil is the host's apt")
	a := &privateApt{dir: "/c/apt/x", suites: []string{"trixie-backports", "sid"}}
	opts := strings.Join(a.options(), " ")
	for _, want := range []string{
		"Dir::Etc::sourcelist=/c/apt/x/sources.list", "Dir::Etc::sourceparts=/dev/null",
		"Dir::Etc::preferences=/c/apt/x/preferences", "Dir::Etc::preferencesparts=/dev/null",
		"Dir::State::Lists=/c/apt/x/lists", "Dir::State::status=/dev/null", "Dir::Cache=/c/apt/x/cache",
	} {
		assert.Contains(t, opts, want)
	}
	assert.Equal(t, " (in trixie-backports, sid)", a.where())
}

func TestConsoleStream(t *testing.T) {
	var out bytes.Buffer
	var release string
	c := &consoleStream{w: &out, onRelease: func(r string) { release = r }}
	console := "SeaBIOS\r\n[    0.4] noise\r\nvminit: mount /sys/kernel/debug: busy\r\n\x1b[2J" + markerKernel + " 7.3.4+deb13-cloud-amd64\r\n=== RUN   TestX\r\n\r\nPASS\r\nno newline\r\n\r\n" + markerExit + " 0\r\n[ 1.2] reboot: Power down\r\n"
	// Written in pieces that split lines and markers.
	for len(console) > 0 {
		n := min(7, len(console))
		c.Write([]byte(console[:n]))
		console = console[n:]
	}
	c.flush()
	assert.Equal(t, "7.3.4+deb13-cloud-amd64", release)
	assert.Equal(t, "vminit: mount /sys/kernel/debug: busy\n=== RUN   TestX\n\nPASS\nno newline\n", out.String(), "blank lines before the exit marker left out")
	assert.True(t, c.wrote)
}

func TestFlagDirs(t *testing.T) {
	assert.Equal(t, []string{"/tmp/go-build1/b001", "/tmp/out", "/tmp/cover"},
		flagDirs([]string{"-test.testlogfile=/tmp/go-build1/b001/testlog.txt", "-test.v=true", "-test.outputdir=/tmp/out/", "--test.gocoverdir=/tmp/cover", "-test.run=/x", "x=/y", "-test.coverprofile=rel/c.out"}))
}

func TestCheckStatic(t *testing.T) {
	dir := t.TempDir()
	static, dynamic := filepath.Join(dir, "static"), filepath.Join(dir, "dynamic")
	src := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(src, []byte("package main\n\nimport \"os/user\"\n\nfunc main() { user.Current() }\n"), 0o644))
	for bin, cgo := range map[string]string{static: "0", dynamic: "1"} {
		cmd := exec.Command("go", "build", "-o", bin, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		out, err := cmd.CombinedOutput()
		if cgo == "1" && err != nil {
			t.Logf("no cgo build here (%v): only the static case\n%s", err, out)
			continue
		}
		require.NoError(t, err, "%s", out)
	}
	data, err := os.ReadFile(static)
	require.NoError(t, err)
	assert.NoError(t, CheckStatic(static, data))
	if data, err := os.ReadFile(dynamic); err == nil {
		err := CheckStatic(dynamic, data)
		assert.ErrorContains(t, err, "is dynamically linked (it needs /lib64/ld-linux-x86-64.so.2 and libc.so.6")
		assert.ErrorContains(t, err, "CGO_ENABLED=0")
	}
	assert.ErrorContains(t, CheckStatic(src, []byte("package main")), "is not an ELF executable")
}

func TestSummarize(t *testing.T) {
	k := func(n string) Kernel { return Kernel{Name: n} }
	ok := []Outcome{{Kernel: k("6.1")}, {Kernel: k("7.x")}}
	assert.Equal(t, "passed on 6.1, 7.x", Summarize(ok))
	mixed := []Outcome{{Kernel: k("6.1")}, {Kernel: k("6.12"), Exit: 1}, {Kernel: k("7.x"), Exit: -1, Err: errors.New("no FENTRYGEN-VM-EXIT line: the guest did not finish")}}
	assert.Equal(t, "FAILED on 6.12: exit status 1; 7.x: no FENTRYGEN-VM-EXIT line: the guest did not finish; passed on 6.1", Summarize(mixed))
	assert.Equal(t, "FAILED on 6.12: exit status 1", Summarize(mixed[1:2]))
}

func TestDirFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"a.go": "package a", "testdata/x.txt": "x", ".git/HEAD": "ref", ".hidden": "h"} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	require.NoError(t, os.Symlink("a.go", filepath.Join(dir, "link.go")))
	files, note, err := dirFiles(dir)
	require.NoError(t, err)
	assert.Empty(t, note)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"a.go", "testdata/x.txt"}, names)
	assert.Equal(t, "x", string(files["testdata/x.txt"].Data))

	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxDirBytes+1))
	require.NoError(t, f.Close())
	files, note, err = dirFiles(dir)
	require.NoError(t, err)
	assert.Nil(t, files)
	assert.Contains(t, note, "not copied into the guest")
}
