// Package inet prints addresses as C programs do.
package inet

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Ntop is glibc's inet_ntop: a dotted quad for AF_INET (the first 4 bytes
// of addr), RFC 5952 text for AF_INET6 with IPv4-mapped (::ffff:a.b.c.d)
// and IPv4-compatible (::a.b.c.d) addresses ending in a dotted quad, and ""
// for other families (inet_ntop fails; the tools print the empty buffer).
func Ntop(family int, addr []byte) string {
	switch family {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(addr[:4])).String()
	case unix.AF_INET6:
		a := netip.AddrFrom16([16]byte(addr[:16]))
		if b := a.As16(); [12]byte(b[:12]) == [12]byte{} && (b[12] != 0 || b[13] != 0) {
			return fmt.Sprintf("::%d.%d.%d.%d", b[12], b[13], b[14], b[15])
		}
		return a.String()
	}
	return ""
}

// Ntoa is inet_ntoa: the dotted quad of an IPv4 address kept in network
// byte order (a __be32 read into a uint32).
func Ntoa(addr uint32) string {
	return Ntop(unix.AF_INET, binary.NativeEndian.AppendUint32(nil, addr))
}

// Be32 is an IPv4 address as the kernel keeps it (a __be32) read into a
// uint32: what Ntoa prints.
func Be32(addr netip.Addr) uint32 {
	b := addr.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// Htons is htons: a port in host order as the kernel keeps it in a
// __be16, read into a uint16.
func Htons(port uint16) uint16 { return Ntohs(port) }

// Ntohs is ntohs: a port kept in network byte order (a __be16 read into a
// uint16) in host order.
func Ntohs(port uint16) uint16 {
	return binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, port))
}
