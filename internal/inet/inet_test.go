package inet

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestNtop checks the forms glibc's inet_ntop prints.
func TestNtop(t *testing.T) {
	assert.Equal(t, "127.0.0.1", Ntop(unix.AF_INET, []byte{127, 0, 0, 1, 9, 9}))
	for s, want := range map[string]string{
		"::1":            "::1",
		"::":             "::",
		"fe80::1:0:0:1":  "fe80::1:0:0:1",
		"2001:db8::":     "2001:db8::",
		"1:0:2::":        "1:0:2::",
		"::ffff:1.2.3.4": "::ffff:1.2.3.4",
		"::10.0.0.1":     "::10.0.0.1",
		"::1:0":          "::0.1.0.0",
	} {
		a := netip.MustParseAddr(s).As16()
		assert.Equal(t, want, Ntop(unix.AF_INET6, a[:]), s)
	}
	assert.Equal(t, "", Ntop(unix.AF_UNIX, make([]byte, 16)))
	var be [6]byte
	copy(be[:], []byte{10, 1, 2, 3, 0x1f, 0x90})
	assert.Equal(t, "10.1.2.3", Ntoa(binary.NativeEndian.Uint32(be[:4])))
	assert.Equal(t, uint16(8080), Ntohs(binary.NativeEndian.Uint16(be[4:])))
	assert.Equal(t, binary.NativeEndian.Uint32(be[:4]), Be32(netip.MustParseAddr("10.1.2.3")))
	assert.Equal(t, binary.NativeEndian.Uint16(be[4:]), Htons(8080))
}
