// Package netif brings network interfaces up and down. The test VM's init
// and the guest-side test helpers share it.
package netif

import "golang.org/x/sys/unix"

// SetUp sets or clears IFF_UP on the interface called name.
func SetUp(name string, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	flags := ifr.Uint16() &^ unix.IFF_UP
	if up {
		flags |= unix.IFF_UP
	}
	ifr.SetUint16(flags)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// SetAddr4 sets the primary IPv4 address and netmask of the interface
// called name (SIOCSIFADDR, SIOCSIFNETMASK); 0.0.0.0 removes the address
// and with it the routes through it.
func SetAddr4(name string, addr, mask [4]byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	set := func(req uint, v [4]byte) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(v[:]); err != nil {
			return err
		}
		return unix.IoctlIfreq(fd, req, ifr)
	}
	if err := set(unix.SIOCSIFADDR, addr); err != nil {
		return err
	}
	if addr == [4]byte{} {
		return nil
	}
	return set(unix.SIOCSIFNETMASK, mask)
}
