package vmtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLog2Hist(t *testing.T) {
	out := "Tracing vfs_fsync_range.  Hit Ctrl-C to exit\n\n" +
		"     nsec                : count    distribution\n" +
		"         0 -> 1          : 2        |********************                    |\n" +
		"         2 -> 3          : 0        |                                        |\n" +
		"         4 -> 7          : 4        |****************************************|\n" +
		"operation = 'read'\n" +
		"     usecs               : count    distribution\n" +
		"         0 -> 1          : 1        |**********                              |\n" +
		"  16777216 -> 33554431   : 7        |****************************************|\n" +
		"Exiting trace of vfs_fsync_range\n"
	h, err := ParseLog2Hist(out)
	require.NoError(t, err)
	want := make([]uint64, 25)
	want[0], want[2], want[24] = 3, 4, 7
	assert.Equal(t, want, h)

	assert.Equal(t, "Tracing vfs_fsync_range.  Hit Ctrl-C to exit\n\n     nsec                : count    distribution\n"+
		"operation = 'read'\n     usecs               : count    distribution\nExiting trace of vfs_fsync_range\n", WithoutHistRows(out))

	_, err = ParseLog2Hist("     usecs               : count    distribution\n         4 -> 8          : 4        |***|\n")
	assert.Error(t, err, "4 -> 8 is no log2 bucket")
}

func TestHistShift(t *testing.T) {
	for _, c := range []struct {
		a, b       []uint64
		moved, far uint64
	}{
		{[]uint64{1, 2, 3}, []uint64{1, 2, 3}, 0, 0},
		{[]uint64{0, 5}, []uint64{5}, 5, 0},
		{[]uint64{0, 0, 5}, []uint64{5}, 10, 5},
		{[]uint64{2, 2, 2}, []uint64{0, 4, 2}, 2, 0},
		{[]uint64{4, 0, 2}, []uint64{0, 4, 2}, 4, 0},
		{[]uint64{4, 0, 2}, []uint64{0, 2, 4}, 6, 2},
		{[]uint64{0, 3, 3}, []uint64{3, 3}, 6, 0},
		{[]uint64{1, 0, 0, 0, 9}, []uint64{0, 0, 0, 1, 9}, 3, 1},
		{[]uint64{0, 2, 2, 0}, []uint64{2, 0, 0, 2}, 4, 0},
		{[]uint64{0, 2, 0, 0, 0, 0, 1}, []uint64{0, 3}, 5, 1},
	} {
		moved, far := HistShift(c.a, c.b)
		assert.Equal(t, c.moved, moved, "moved %v vs %v", c.a, c.b)
		assert.Equal(t, c.far, far, "far %v vs %v", c.a, c.b)
		moved, far = HistShift(c.b, c.a)
		assert.Equal(t, c.moved, moved, "moved %v vs %v, swapped", c.b, c.a)
		assert.Equal(t, c.far, far, "far %v vs %v, swapped", c.b, c.a)
	}
}
