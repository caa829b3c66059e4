package vmtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel is a Debian kernel the tests boot.
type Kernel struct {
	// Name is the short series ("6.1", "6.12").
	Name string
	// Package is the versioned Debian package it came from.
	Package string
	// Vmlinuz is the compressed kernel image.
	Vmlinuz string
}

// series are the kernels every VM test runs on: Debian 12's cloud kernel
// (6.1) and its backported 6.12, by their unversioned meta packages.
var series = []struct{ name, meta string }{
	{"6.1", "linux-image-cloud-amd64"},
	{"6.12", "linux-image-6.12-cloud-amd64"},
}

// CacheDir is where kernels are unpacked: $FENTRYGEN_CACHE, else the user's
// cache folder. Never inside the repository.
func CacheDir() (string, error) {
	if dir := os.Getenv("FENTRYGEN_CACHE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "fentrygen"), nil
}

// Kernels finds the test kernels in the cache, downloading and unpacking
// (apt-get download, dpkg -x; nothing is installed on the host) any that are
// missing. Versioned package names are resolved with apt-cache depends.
func Kernels() ([]Kernel, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "kernels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []Kernel
	for _, s := range series {
		k, err := kernel(dir, s.name, s.meta)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", s.name, err)
		}
		out = append(out, k)
	}
	return out, nil
}

func kernel(dir, name, meta string) (Kernel, error) {
	pkg, resolveErr := resolve(meta)
	if resolveErr != nil && os.Geteuid() == 0 {
		// A fresh machine may have no package lists yet.
		if exec.Command("apt-get", "update", "-qq").Run() == nil {
			pkg, resolveErr = resolve(meta)
		}
	}
	if resolveErr != nil {
		// Offline: use what an earlier run unpacked, if anything.
		matches, _ := filepath.Glob(filepath.Join(dir, "linux-image-"+name+".*-cloud-amd64"))
		if name == "6.1" {
			more, _ := filepath.Glob(filepath.Join(dir, "linux-image-6.1.0-*-cloud-amd64"))
			matches = append(matches, more...)
		}
		if len(matches) == 0 {
			return Kernel{}, resolveErr
		}
		pkg = filepath.Base(matches[len(matches)-1])
	}
	root := filepath.Join(dir, pkg)
	if _, err := os.Stat(root); err != nil {
		if err := download(dir, pkg); err != nil {
			return Kernel{}, err
		}
	}
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return Kernel{}, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", root, len(images))
	}
	return Kernel{Name: name, Package: pkg, Vmlinuz: images[0]}, nil
}

// resolve turns a meta package into the versioned image package it depends
// on, as apt-cache depends reports it.
func resolve(meta string) (string, error) {
	out, err := exec.Command("apt-cache", "depends", meta).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w (run apt-get update?)", meta, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s: no linux-image dependency in %q", meta, out)
}

func download(dir, pkg string) error {
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: want one .deb, found %d", pkg, len(debs))
	}
	unpacked := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg", "-x", debs[0], unpacked).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg -x %s: %w\n%s", debs[0], err, out)
	}
	return os.Rename(unpacked, filepath.Join(dir, pkg))
}

// lock takes an exclusive lock on path: test packages run as separate
// processes and share the cache.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, errors.Join(errors.New("lock kernel cache"), err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
