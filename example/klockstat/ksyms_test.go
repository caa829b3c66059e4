package klockstat

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKsyms checks the lookups against libbpf-tools' trace_helpers.c: the
// symbol at or below an address (for equal addresses, the name sorting
// last), by name the first in address order, and klockstat's names.
func TestKsyms(t *testing.T) {
	syms, err := parseKsyms(strings.NewReader(`ffffffff81000000 T _stext
ffffffff81200000 T pipe_write
ffffffff81100000 T pipe_read
ffffffff81100000 t alias_read
ffffffff82000000 D cgroup_mutex
ffffffffc0000000 t helper	[mymod]
`))
	require.NoError(t, err)
	assert.Nil(t, syms.mapAddr(0xffffffff80000000))
	assert.Equal(t, "pipe_read", syms.mapAddr(0xffffffff81100000).name)
	assert.Equal(t, "pipe_read+0x3d", syms.symname(0xffffffff8110003d))
	assert.Equal(t, "pipe_write+0x0", syms.symname(0xffffffff81200000))
	assert.Equal(t, "helper+0x10", syms.symname(0xffffffffc0000010))
	assert.Equal(t, "Unknown", syms.symname(0x1000))
	assert.Equal(t, uint64(0xffffffff82000000), syms.get("cgroup_mutex").addr)
	assert.Nil(t, syms.get("nope"))
	assert.Equal(t, "cgroup_mutex", syms.lockName(0xffffffff82000000))
	assert.Equal(t, "no-ksym", syms.lockName(0xffffffff82000008))
	_, err = parseKsyms(strings.NewReader("nothex T x\n"))
	assert.Error(t, err)
}

// TestPrintTime checks print_time's units and float rounding.
func TestPrintTime(t *testing.T) {
	for ns, want := range map[uint64]string{
		0: "0 ns", 999: "999 ns", 1000: "1.0 us", 1250: "1.2 us", 999999: "1000.0 us",
		1000000: "1.0 ms", 1500000000: "1.5 s ", 90e9: "1.5 m ", 7200e9: "2.0 h ",
	} {
		assert.Equal(t, want, printTime(ns), "%d ns", ns)
	}
}

// TestParseSort checks -S.
func TestParseSort(t *testing.T) {
	var o Options
	require.NoError(t, ParseSort("acq_count,hld_total", &o))
	assert.Equal(t, SortCount, o.SortAcq)
	assert.Equal(t, SortTotal, o.SortHld)
	require.NoError(t, ParseSort("hld_max", &o))
	assert.Equal(t, SortMax, o.SortHld)
	assert.Error(t, ParseSort("acq_min", &o))
	assert.Error(t, ParseSort("max", &o))
}
