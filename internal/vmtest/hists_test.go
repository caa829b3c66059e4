package vmtest

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/runtime"
)

// TestParseHists reads back what runtime.Histogram.Print writes, titles
// and all.
func TestParseHists(t *testing.T) {
	var out bytes.Buffer
	out.WriteString("Tracing SYN backlog size. Ctrl-C to end.\n\nbacklog_max = 16\n")
	runtime.Histogram{Kind: runtime.Log2, Slots: []uint64{2, 2, 4, 2, 0}}.Print(&out, "backlog")
	out.WriteString("backlog_max = 8\n")
	runtime.Histogram{Kind: runtime.Log2, Slots: []uint64{0, 0, 0, 1}}.Print(&out, "backlog")
	hists, err := ParseHists(out.String())
	require.NoError(t, err)
	require.Len(t, hists, 2)
	assert.Equal(t, "backlog_max = 16", hists[0].Title)
	assert.Equal(t, "backlog", hists[0].Unit)
	assert.Equal(t, map[uint64]uint64{0: 2, 2: 2, 4: 4, 8: 2}, hists[0].Counts)
	assert.Equal(t, uint64(10), hists[0].Total())
	assert.Equal(t, "backlog_max = 8", hists[1].Title)
	assert.Equal(t, map[uint64]uint64{8: 1}, hists[1].Counts)
	assert.Equal(t, `backlog_max = 8
     backlog             : count    distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 1        |****************************************|`, hists[1].Text)
}
