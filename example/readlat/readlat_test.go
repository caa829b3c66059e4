package readlat_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/readlat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// TestREADMEShowsThisPackage keeps the README's example and this package
// the same code.
func TestREADMEShowsThisPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	src, err := os.ReadFile("probes.go")
	require.NoError(t, err)
	_, body, _ := strings.Cut(string(src), "package readlat\n")
	assert.Contains(t, string(readme), "```go\npackage readlat\n"+body+"```")
}

// TestVMReadLatency: n reads of a file are n samples in the histogram (and
// whatever else the system read meanwhile).
func TestVMReadLatency(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		objs, err := readlat.Load(runtime.Options{})
		require.NoError(t, err)
		defer objs.Close()
		f, err := os.CreateTemp("", "readlat")
		require.NoError(t, err)
		defer os.Remove(f.Name())
		const n = 1000
		buf := make([]byte, 8)
		for range n {
			_, err := f.ReadAt(buf, 0)
			require.Error(t, err, "EOF: the file is empty, the read happened")
		}
		h, err := objs.Lat.Histogram()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, h.Total(), uint64(n))
		var out bytes.Buffer
		h.Print(&out, "usecs")
		assert.Contains(t, out.String(), "usecs               : count    distribution")
		t.Logf("vfs_read latency on %s:\n%s", runtime.KernelRelease(), out.String())
		left, err := objs.Start.Entries()
		require.NoError(t, err)
		assert.LessOrEqual(t, len(left), 8, "exits took the stash entries back (a few reads may be in flight)")
	})
}
