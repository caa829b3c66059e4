package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/testmod"
)

var badBTF = filepath.Join("..", "..", "testdata", "badbtf")

const selfAnonErr = "invalid BTF: struct self_anon [4] contains itself: struct self_anon [4] member #1 -> struct self_anon [4]: type refers to itself"

// TestBTFFileErrors: every subcommand refuses a -btf that is not a regular
// file of well-formed BTF with "FILE: ...", as a failure (exit 1), not a
// usage error. A FIFO used to block forever, a self-containing struct to
// overflow the stack.
func TestBTFFileErrors(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	loop := filepath.Join(badBTF, "self-anonymous-member.btf")
	for path, want := range map[string]string{
		dir:  dir + ": is a directory, not a regular file",
		fifo: fifo + ": is a named pipe, not a regular file",
		loop: loop + ": " + selfAnonErr,
	} {
		for _, args := range [][]string{
			{"describe", "-btf", path, "takes_self_anon"},
			{"snapshot", "-btf", path, "-o", filepath.Join(dir, "out.btf"), "takes_self_anon"},
			{"new", "-btf", path, "takes_self_anon"},
		} {
			_, _, err := runIn(t, "", args...)
			assert.EqualError(t, err, want, "%v", args)
			assert.False(t, errors.As(err, new(usageError)), "a failure, exit 1")
		}
	}
}

// TestPinnedBTFErrors: a package's fentrygen.btf is picked up by itself,
// so a bad one is an error that names it, relative to the working
// directory, and nothing is written. A FIFO used to block forever, a
// self-containing struct to overflow the stack (exit 2).
func TestPinnedBTFErrors(t *testing.T) {
	loop, err := os.ReadFile(filepath.Join(badBTF, "self-anonymous-member.btf"))
	require.NoError(t, err)
	probe := []byte("package sub\n\n//fentry:takes_self_anon\nfunc onSelf(p *OnSelf) {}\n")

	dir := testmod.Write(t, map[string][]byte{"sub/probes.go": probe, "sub/fentrygen.btf": loop})
	_, stderr, err := runIn(t, dir, "./sub")
	require.ErrorIs(t, err, errReported)
	assert.Equal(t, "fentrygen: "+filepath.Join("sub", "fentrygen.btf")+": "+selfAnonErr+"\n", stderr)
	_, err = os.Stat(filepath.Join(dir, "sub", "fentrygen_gen.go"))
	assert.True(t, os.IsNotExist(err), "nothing written")

	dir = testmod.Write(t, map[string][]byte{"probes.go": []byte("package probes\n\n//fentry:tcp_v4_connect\nfunc onConnect(p *OnConnect) {}\n")})
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, "fentrygen.btf"), 0o600))
	_, stderr, err = runIn(t, dir)
	require.ErrorIs(t, err, errReported)
	assert.Equal(t, "fentrygen: fentrygen.btf: is a named pipe, not a regular file\n", stderr)
	_, _, err = runIn(t, dir, "new", "tcp_v4_connect")
	assert.EqualError(t, err, "fentrygen.btf: is a named pipe, not a regular file")

	// A pinned file that is there but cannot be read is not a reason to
	// take BTF from elsewhere.
	dir = testmod.Write(t, map[string][]byte{"probes.go": []byte("package probes\n\n//fentry:tcp_v4_connect\nfunc onConnect(p *OnConnect) {}\n")})
	require.NoError(t, os.Symlink("fentrygen.btf", filepath.Join(dir, "fentrygen.btf")))
	_, stderr, err = runIn(t, dir)
	require.ErrorIs(t, err, errReported)
	assert.Equal(t, "fentrygen: fentrygen.btf: too many levels of symbolic links\n", stderr)
}

// TestBadBTFExitStatus runs the command: bad BTF is exit status 1 and one
// line, never a crash (exit 2 with a stack trace).
func TestBadBTFExitStatus(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fentrygen")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	halfDecoded := abs(t, filepath.Join(badBTF, "mutant-half-decoded.btf"))
	loop, err := os.ReadFile(filepath.Join(badBTF, "self-anonymous-member.btf"))
	require.NoError(t, err)
	mod := testmod.Write(t, map[string][]byte{
		"probes.go":     []byte("package probes\n\n//fentry:takes_self_anon\nfunc onSelf(p *OnSelf) {}\n"),
		"fentrygen.btf": loop,
	})
	for _, c := range []struct {
		dir    string
		args   []string
		stderr string
	}{
		{"", []string{"snapshot", "-btf", halfDecoded, "-o", filepath.Join(t.TempDir(), "s.btf"), "do_mmap"},
			halfDecoded + ": invalid BTF: inflate type: struct address_space (id 124): can't get name for member 5: offset 2049 is not the beginning of a string"},
		{mod, nil, "fentrygen.btf: " + selfAnonErr},
		{"", []string{"describe", "-btf", "/dev/zero", "tcp_v4_connect"}, "/dev/zero: is a device, not a regular file"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Dir = c.dir
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%v: %s", c.args, out)
		assert.Equal(t, 1, exit.ExitCode(), "%v", c.args)
		assert.Equal(t, "fentrygen: "+c.stderr+"\n", string(out), "%v", c.args)
	}
}
