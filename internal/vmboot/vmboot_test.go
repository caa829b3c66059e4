package vmboot

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	res := parse("noise\r\n\x1b[?7l\x1b[2J" + markerKernel + " 6.1.0-56-cloud-amd64\r\n=== RUN   TestX\r\n--- PASS: TestX\r\n\r\n" + markerExit + " 0\r\n[ 1.2] reboot: Power down\r\n")
	assert.Equal(t, "6.1.0-56-cloud-amd64", res.Release)
	assert.Equal(t, 0, res.Exit)
	assert.Equal(t, "=== RUN   TestX\n--- PASS: TestX", res.Output)

	res = parse("[    0.5] Kernel panic - not syncing: no init\r\n")
	assert.Equal(t, -1, res.Exit)
	assert.Contains(t, res.Output, "Kernel panic")
}

func TestCpio(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeCpio(&buf, map[string]File{
		"init":                 {Mode: 0o755, Data: []byte("abc")},
		"usr/sbin/vfsstat":     {Mode: 0o755, Data: []byte("elf")},
		"lib/fentrygen/libc.6": {Mode: 0o755, Data: []byte("libc")},
	}))
	s := buf.String()
	assert.True(t, strings.HasPrefix(s, "070701"))
	assert.Zero(t, buf.Len()%4)
	var names []string
	for _, part := range strings.Split(s, "070701")[1:] {
		// The name follows the 104 hex digits of the header's other fields.
		name, _, _ := strings.Cut(part[104:], "\x00")
		names = append(names, name)
	}
	assert.Equal(t, []string{"init", "lib", "lib/fentrygen", "lib/fentrygen/libc.6", "usr", "usr/sbin", "usr/sbin/vfsstat", "TRAILER!!!"}, names, "folders before what they hold")
	assert.Contains(t, s, "000041ED", "a folder's mode, 040755")
}

func TestBzPayload(t *testing.T) {
	_, err := bzPayload([]byte("not a kernel"))
	assert.ErrorContains(t, err, "not an x86 bzImage")
}
