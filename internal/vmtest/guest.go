package vmtest

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/netif"
)

// Serve starts a TCP listener on 127.0.0.1 that accepts and closes every
// connection until it is closed, and returns it with its port.
func Serve() (net.Listener, uint16, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port), nil
}

// Listen is Serve for a test: the listener closes when the test ends.
func Listen(t *testing.T) uint16 {
	t.Helper()
	ln, port, err := Serve()
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return port
}

// Connect makes one TCP connection to 127.0.0.1:port with connect(2) and
// returns connect's error as an errno (nil on success).
func Connect(port uint16) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}})
}

// ConnectWrongFamily asks an AF_INET TCP socket to connect to the IPv6
// loopback at port: tcp_v4_connect returns -EAFNOSUPPORT, and no packet is
// sent.
func ConnectWrongFamily(port uint16) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrInet6{Port: int(port), Addr: [16]byte{15: 1}})
}

// ReadRecords reads records from rd until want have arrived or wait passes
// with nothing new, and returns them all (possibly more than want, if more
// were already queued).
func ReadRecords(t *testing.T, rd *ringbuf.Reader, want int, wait time.Duration) [][]byte {
	t.Helper()
	var out [][]byte
	for len(out) < want {
		rd.SetDeadline(time.Now().Add(wait))
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("read ring buffer: %v", err)
		}
		out = append(out, rec.RawSample)
	}
	// Drain what is already there without waiting, to catch extras.
	for {
		rd.SetDeadline(time.Now())
		rec, err := rd.Read()
		if err != nil {
			break
		}
		out = append(out, rec.RawSample)
	}
	return out
}

// ConnectUnreachable connects to 127.0.0.1:port while lo has no IPv4
// address, so no route leads there: connect fails with ENETUNREACH inside
// tcp_v4_connect, and no packet is sent. lo gets 127.0.0.1/8 back after.
func ConnectUnreachable(t *testing.T, port uint16) error {
	t.Helper()
	if err := netif.SetAddr4("lo", [4]byte{}, [4]byte{}); err != nil {
		t.Fatalf("remove lo's address: %v", err)
	}
	err := Connect(port)
	if err := netif.SetAddr4("lo", [4]byte{127, 0, 0, 1}, [4]byte{255, 0, 0, 0}); err != nil {
		t.Fatalf("restore lo's address: %v", err)
	}
	if err := netif.SetUp("lo", true); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
	return err
}

// MmapFile maps pages pages of a memfd at page offset pgoff, shared and
// with prot, and unmaps them: one do_mmap call with known len, prot, flags
// and pgoff.
func MmapFile(t *testing.T, pages, pgoff, prot int) {
	t.Helper()
	fd, err := unix.MemfdCreate("vmtest", 0)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	defer unix.Close(fd)
	page := os.Getpagesize()
	if err := unix.Ftruncate(fd, int64((pages+pgoff)*page)); err != nil {
		t.Fatalf("ftruncate: %v", err)
	}
	mem, err := unix.Mmap(fd, int64(pgoff*page), pages*page, prot, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	if err := unix.Munmap(mem); err != nil {
		t.Fatalf("munmap: %v", err)
	}
}

// GetuidAs calls getuid(2) with the real uid set to uid (effective and
// saved uid stay 0, so the uid can be restored), then restores it.
func GetuidAs(t *testing.T, uid int) {
	t.Helper()
	if err := syscall.Setresuid(uid, 0, 0); err != nil {
		t.Fatalf("setresuid: %v", err)
	}
	got := syscall.Getuid()
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		t.Fatalf("setresuid back: %v", err)
	}
	if got != uid {
		t.Fatalf("getuid = %d, want %d", got, uid)
	}
}

// Comm is this process's comm as the kernel keeps it: the executable's
// base name, cut to 15 bytes.
func Comm() string {
	data, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// Htons converts a port to network byte order as it sits in memory,
// read back as a little-endian u16.
func Htons(p uint16) uint16 { return p<<8 | p>>8 }
