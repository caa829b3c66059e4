package vmtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
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

// Echo starts a TCP server on 127.0.0.1 that echoes what each connection
// sends, without keepalive probes, until the test ends, and returns its
// port.
func Echo(t *testing.T) uint16 {
	t.Helper()
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// PingPong makes n request-response round trips of one byte each way over
// one TCP connection to 127.0.0.1:port (an [Echo] server), without
// keepalive probes, and keeps the connection open until the test ends
// (closing it would send more segments). It returns the client's port.
func PingPong(t *testing.T, port uint16, n int) uint16 {
	t.Helper()
	c, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	buf := make([]byte, 1)
	for i := range n {
		buf[0] = byte(i)
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	return uint16(c.LocalAddr().(*net.TCPAddr).Port)
}
