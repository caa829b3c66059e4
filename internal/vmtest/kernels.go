package vmtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
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
		// No $HOME or $XDG_CACHE_HOME: a folder that survives the process.
		return filepath.Join(os.TempDir(), "fentrygen-cache"), nil
	}
	return filepath.Join(dir, "fentrygen"), nil
}

// Kernels finds the test kernels in the cache, downloading and unpacking
// (apt-get download, dpkg -x; nothing is installed on the host) any that are
// missing. Versioned package names are resolved with apt-cache depends.
func Kernels() ([]Kernel, error) {
	var out []Kernel
	err := withCache(func(cache string) error {
		dir := filepath.Join(cache, "kernels")
		for _, s := range series {
			root, err := unpacked(dir, func() (string, string, error) {
				pkg, err := resolve(s.meta)
				return pkg, pkg, err
			}, "linux-image-"+s.name+".*-cloud-amd64")
			if err != nil {
				return fmt.Errorf("kernel %s: %w", s.name, err)
			}
			images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
			if len(images) != 1 {
				return fmt.Errorf("kernel %s: %s: want one boot/vmlinuz-*, found %d", s.name, root, len(images))
			}
			out = append(out, Kernel{Name: s.name, Package: filepath.Base(root), Vmlinuz: images[0]})
		}
		return nil
	})
	return out, err
}

// withCache runs f on the cache folder, locked: test packages run as
// separate processes and share it.
func withCache(f func(cache string) error) error {
	cache, err := CacheDir()
	if err != nil {
		return err
	}
	// The lock has always lived with the kernels.
	dir := filepath.Join(cache, "kernels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	return f(cache)
}

// unpacked returns the folder dir/NAME holding a Debian package unpacked,
// downloading it when missing: resolve names it (NAME, and the spec
// apt-get download takes). When apt cannot resolve it, even after apt-get
// update (as root), the newest earlier download matching glob serves.
func unpacked(dir string, resolve func() (name, spec string, err error), glob string) (string, error) {
	name, spec, resolveErr := resolve()
	if resolveErr != nil && os.Geteuid() == 0 {
		// A fresh machine may have no package lists yet.
		if exec.Command("apt-get", "update", "-qq").Run() == nil {
			name, spec, resolveErr = resolve()
		}
	}
	if resolveErr != nil {
		// Offline: use what an earlier run unpacked, if anything.
		matches, _ := filepath.Glob(filepath.Join(dir, glob))
		if len(matches) == 0 {
			return "", resolveErr
		}
		return matches[len(matches)-1], nil
	}
	root := filepath.Join(dir, name)
	if _, err := os.Stat(root); err != nil {
		if err := download(dir, spec, name); err != nil {
			return "", err
		}
	}
	return root, nil
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

// download unpacks the package apt-get download spec fetches into dir/name.
func download(dir, spec, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", "download", spec)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w\n%s", spec, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: want one .deb, found %d", spec, len(debs))
	}
	unpacked := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg", "-x", debs[0], unpacked).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg -x %s: %w\n%s", debs[0], err, out)
	}
	return os.Rename(unpacked, filepath.Join(dir, name))
}

// lock takes an exclusive lock on path.
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

// BTF returns the kernel's own BTF, what the guest shows in
// /sys/kernel/btf/vmlinux: the bzImage's payload (located by its boot
// header) is decompressed in Go (lz4, zstd or xz, as the kernel was
// packed; no tools needed) and the vmlinux's .BTF section read.
func (k Kernel) BTF() (*btf.Spec, error) {
	image, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return nil, err
	}
	payload, err := bzPayload(image)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Vmlinuz, err)
	}
	vmlinux, err := decompressPayload(payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Vmlinuz, err)
	}
	// A stripped vmlinux has no symbol table: read .BTF as raw BTF.
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return nil, fmt.Errorf("%s: the payload is not an ELF vmlinux: %w", k.Vmlinuz, err)
	}
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, fmt.Errorf("%s: vmlinux has no .BTF section", k.Vmlinuz)
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, err
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: .BTF: %w", k.Vmlinuz, err)
	}
	return spec, nil
}

// bzPayload is the compressed vmlinux inside an x86 bzImage: the boot
// header's payload_offset and payload_length (0x248, 0x24c), counted from
// the end of the setup sectors (0x1f1, 4 when 0, plus the boot sector).
func bzPayload(image []byte) ([]byte, error) {
	if len(image) < 0x250 || string(image[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not an x86 bzImage")
	}
	setup := int(image[0x1f1])
	if setup == 0 {
		setup = 4
	}
	start := (setup+1)*512 + int(binary.LittleEndian.Uint32(image[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(image[0x24c:]))
	if start >= end || end > len(image) {
		return nil, errors.New("bzImage payload out of range")
	}
	return image[start:end], nil
}

// KernelBTFs returns the BTF of every test kernel by series ("6.1",
// "6.12"), skipping the test loudly (failing it with FENTRYGEN_VM=require)
// when the kernels cannot be had.
func KernelBTFs(t testing.TB) map[string]*btf.Spec {
	t.Helper()
	kernels, err := Kernels()
	if err != nil {
		msg := fmt.Sprintf("KERNEL BTF NOT AVAILABLE: %v", err)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg + "; set FENTRYGEN_VM=require to make this a failure")
	}
	out := map[string]*btf.Spec{}
	for _, k := range kernels {
		spec, err := k.BTF()
		if err != nil {
			t.Fatal(err)
		}
		out[k.Name] = spec
	}
	return out
}
