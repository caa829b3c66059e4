// Package vminit is /init in the initramfs of fentrygen's VMs: it mounts
// what cilium/ebpf and the tests need, loads the kernel modules listed in
// /lib/modules/RELEASE/vmtest.load, mounts the disks listed in
// /vmtest.mounts, brings loopback up, makes the folders listed in
// /vmtest.mkdir, runs the program named after "--" on the kernel command
// line (or, without one, the NUL-separated arguments in /vmtest.args) in
// the folder named in /vmtest.dir (else /), with the environment in
// /vmtest.env, prints a marker line with its exit status and powers the
// machine off.
//
// internal/vmtest/vminit is it as a command; fentrygen's own command turns
// into it when the kernel starts it as /init.
package vminit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/netif"
)

const (
	markerKernel = "FENTRYGEN-VM-KERNEL"
	markerExit   = "FENTRYGEN-VM-EXIT"
)

// Main is the whole of /init; it never returns.
func Main() {
	code := 1
	if err := run(&code); err != nil {
		fmt.Printf("vminit: %v\n", err)
	}
	fmt.Printf("\n%s %d\n", markerExit, code)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run(code *int) error {
	for _, m := range []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"bpf", "/sys/fs/bpf", "bpf"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
		{"tracefs", "/sys/kernel/tracing", "tracefs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			fmt.Printf("vminit: mount %s: %v\n", m.dst, err)
		}
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		fmt.Printf("%s %s\n", markerKernel, strings.TrimRight(string(u.Release[:]), "\x00"))
	}
	if err := loadModules(strings.TrimRight(string(u.Release[:]), "\x00")); err != nil {
		return err
	}
	if err := mountDisks("/vmtest.mounts"); err != nil {
		return err
	}
	if err := netif.SetUp("lo", true); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	dirs, err := optionalLines("/vmtest.mkdir")
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The kernel hands init the command line's words after "--".
	args := os.Args[1:]
	if len(args) == 0 {
		if data, err := os.ReadFile("/vmtest.args"); err == nil {
			args = strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
		}
	}
	if len(args) == 0 || args[0] == "" {
		return errors.New("no program to run: put it after -- on the kernel command line, or in /vmtest.args")
	}
	env, err := lines("/vmtest.env")
	if err != nil {
		return err
	}
	dir := "/"
	if data, err := os.ReadFile("/vmtest.dir"); err == nil {
		dir = strings.TrimSpace(string(data))
	}
	cmd := exec.Command(args[0], args[1:]...)
	var u2 unix.Utsname
	unix.Uname(&u2)
	cmd.Env = append([]string{"PATH=/", "HOME=/tmp", "TMPDIR=/tmp",
		"FENTRYGEN_IN_VM=" + strings.TrimRight(string(u2.Release[:]), "\x00")}, env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		*code = 0
	case errors.As(err, &exit):
		*code = exit.ExitCode()
	default:
		return err
	}
	return nil
}

// mountDisks mounts the disks listed in path, one "DEVICE DIR FSTYPE" a
// line, if it exists. Disks are probed asynchronously: wait for each
// device to appear.
func mountDisks(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	mounts, err := lines(path)
	if err != nil {
		return err
	}
	for _, line := range mounts {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("%s: want DEVICE DIR FSTYPE, have %q", path, line)
		}
		dev, dir, fstype := f[0], f[1], f[2]
		const wait = 30 * time.Second
		for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(dev); err == nil {
				break
			}
			if time.Since(start) > wait {
				return fmt.Errorf("%s did not appear within %v", dev, wait)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(dev, dir, fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", dev, fstype, dir, err)
		}
	}
	return nil
}

// optionalLines is lines, or nothing when path does not exist.
func optionalLines(path string) ([]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	return lines(path)
}

func lines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out, sc.Err()
}
