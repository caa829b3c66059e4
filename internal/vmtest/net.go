package vmtest

import (
	"testing"

	"golang.org/x/sys/unix"
)

// loopback is the loopback socket address of family (AF_INET: 127.0.0.1,
// AF_INET6: ::1) at port.
func loopback(family int, port uint16) unix.Sockaddr {
	if family == unix.AF_INET6 {
		return &unix.SockaddrInet6{Port: int(port), Addr: [16]byte{15: 1}}
	}
	return &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}
}

// portOf is the port of a socket address from getsockname.
func portOf(sa unix.Sockaddr) uint16 {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return uint16(a.Port)
	case *unix.SockaddrInet6:
		return uint16(a.Port)
	}
	return 0
}

// ListenBacklog makes a TCP listener of family (AF_INET on 127.0.0.1,
// AF_INET6 on ::1 only) at an ephemeral port with listen(fd, backlog), and
// never accepts: completed handshakes wait in its accept queue. It is
// closed when the test ends.
func ListenBacklog(t *testing.T, family, backlog int) (fd int, port uint16) {
	t.Helper()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			t.Fatalf("IPV6_V6ONLY: %v", err)
		}
	}
	if err := unix.Bind(fd, loopback(family, 0)); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, portOf(sa)
}

// ConnectHeld connects a TCP socket to the loopback address of family at
// port with connect(2) and keeps it open until the test ends. It returns
// connect's error and the socket's local (ephemeral) port.
func ConnectHeld(t *testing.T, family int, port uint16) (lport uint16, err error) {
	t.Helper()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	err = unix.Connect(fd, loopback(family, port))
	if sa, gerr := unix.Getsockname(fd); gerr == nil {
		lport = portOf(sa)
	}
	return lport, err
}
