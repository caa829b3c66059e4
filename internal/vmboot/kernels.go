package vmboot

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
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Kernel is a Debian kernel the tests boot.
type Kernel struct {
	// Name is its series' name ("6.1", "6.12", "7.x").
	Name string
	// Package is the versioned Debian package it came from.
	Package string
	// Vmlinuz is the compressed kernel image.
	Vmlinuz string
}

// Series is a line of kernels the VM tests boot, and how to find its
// newest Debian package.
type Series struct {
	// Name names the series in subtests, logs and -kernels: a kernel
	// release of the series starts with it and a dot ("6.1" holds 6.1.0,
	// not 6.12), a final ".x" standing for any minor version ("7.x").
	Name string
	// Meta is the unversioned meta package whose linux-image-VERSION
	// dependency is the series' newest kernel. Where that package is itself
	// a meta package (7.x), its linux-binary-VERSION dependency holds the
	// image.
	Meta string
	// Suites, when not empty, are Debian suites outside the host's apt
	// sources to resolve Meta in, each "SUITE" or "SUITE/COMPONENT" (main
	// by default), through a private sources list and lists folder in the
	// cache, for download only: the host's apt setup is never read or
	// changed for them. The newest version among them wins. Without
	// Suites, the host's own apt sources serve.
	Suites []string
}

// series are the kernels every VM test runs on, oldest first. Adding or
// removing a kernel is adding or removing a line.
var series = []Series{
	{Name: "6.1", Meta: "linux-image-cloud-amd64"},                                              // Debian 12
	{Name: "6.12", Meta: "linux-image-6.12-cloud-amd64"},                                        // Debian 12's backport
	{Name: "7.x", Meta: "linux-image-cloud-amd64", Suites: []string{"trixie-backports", "sid"}}, // the newest 7.x
}

// AllSeries returns the kernel series the VM tests boot, oldest first.
func AllSeries() []Series { return slices.Clone(series) }

// releasePrefix is how the releases of the series start: "6.1." for
// "6.1", "7." for "7.x".
func (s Series) releasePrefix() string {
	if major, ok := strings.CutSuffix(s.Name, ".x"); ok {
		return major + "."
	}
	return s.Name + "."
}

// SeriesOf is the name of the series a kernel release belongs to ("" if
// none).
func SeriesOf(release string) string {
	for _, s := range series {
		if strings.HasPrefix(release, s.releasePrefix()) {
			return s.Name
		}
	}
	return ""
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
	return KernelsOf(series)
}

// KernelsOf is Kernels for the given series only.
func KernelsOf(list []Series) ([]Kernel, error) {
	var out []Kernel
	err := WithCache(func(cache string) error {
		dir := filepath.Join(cache, "kernels")
		for _, s := range list {
			k, err := s.kernel(cache, dir)
			if err != nil {
				return fmt.Errorf("kernel %s: %w", s.Name, err)
			}
			out = append(out, k)
		}
		return nil
	})
	return out, err
}

// SelectSeries returns the series named in names (as "6.1,7.x"), in
// the order given; "" selects all of them.
func SelectSeries(names string) ([]Series, error) {
	if names == "" {
		return AllSeries(), nil
	}
	var out []Series
	for _, n := range strings.Split(names, ",") {
		i := slices.IndexFunc(series, func(s Series) bool { return s.Name == strings.TrimSpace(n) })
		if i < 0 {
			var have []string
			for _, s := range series {
				have = append(have, s.Name)
			}
			return nil, fmt.Errorf("no kernel series %q (have %s)", n, strings.Join(have, ", "))
		}
		out = append(out, series[i])
	}
	return out, nil
}

// WithCache runs f on the cache folder, locked: test packages run as
// separate processes and share it.
func WithCache(f func(cache string) error) error {
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

// kernel finds the series' newest kernel unpacked in dir, downloading it
// when missing.
func (s Series) kernel(cache, dir string) (Kernel, error) {
	var apt *privateApt
	if len(s.Suites) > 0 {
		apt = &privateApt{dir: filepath.Join(cache, "apt", strings.ReplaceAll(strings.Join(s.Suites, "+"), "/", "_")), suites: s.Suites}
	}
	root, err := unpacked(dir, apt, func() (string, string, error) {
		pkg, err := s.resolve(apt)
		return pkg, pkg, err
	}, "linux-*-"+s.releasePrefix()+"*")
	if err != nil {
		return Kernel{}, err
	}
	var images []string
	for _, pattern := range []string{"boot/vmlinuz-*", "usr/lib/modules/*/vmlinuz", "lib/modules/*/vmlinuz"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		images = append(images, m...)
	}
	if len(images) != 1 {
		return Kernel{}, fmt.Errorf("%s: want one boot/vmlinuz-* or usr/lib/modules/*/vmlinuz, found %d", root, len(images))
	}
	return Kernel{Name: s.Name, Package: filepath.Base(root), Vmlinuz: images[0]}, nil
}

// resolve turns the series' meta package into the versioned package that
// holds the image: Meta's linux-image-VERSION dependency, or that one's
// linux-binary-VERSION dependency when it has one.
func (s Series) resolve(apt *privateApt) (string, error) {
	image, err := dependency(apt, s.Meta, "linux-image-")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(strings.TrimPrefix(image, "linux-image-"), s.releasePrefix()) {
		return "", fmt.Errorf("%s resolved to %s, which is not of series %s: update the series table in internal/vmtest/kernels.go", s.Meta, image, s.Name)
	}
	binary, err := dependency(apt, image, "linux-binary-")
	if err != nil {
		if errors.As(err, new(noDependencyError)) {
			return image, nil // the image package holds the image
		}
		return "", err
	}
	return binary, nil
}

// noDependencyError says a package has no dependency of the kind asked.
type noDependencyError struct{ error }

// dependency is pkg's first dependency whose name starts with prefix, as
// apt-cache depends reports it.
func dependency(apt *privateApt, pkg, prefix string) (string, error) {
	args := append(apt.options(), "depends", pkg)
	out, err := exec.Command("apt-cache", args...).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s%s: %w (run apt-get update?)", pkg, apt.where(), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], prefix) {
			return f[1], nil
		}
	}
	return "", noDependencyError{fmt.Errorf("apt-cache depends %s%s: no %s dependency in %q", pkg, apt.where(), prefix, out)}
}

// privateApt is an apt configuration of its own for suites the host's
// apt sources lack: a sources list (entries signed by Debian's archive
// keyring), preferences that give every suite the same priority (so the
// newest version wins, backports included), and a lists and cache folder,
// all under dir. No host state is read or written through it: not the
// host's sources, lists, preferences, dpkg status or package cache. A nil
// *privateApt is the host's own apt.
type privateApt struct {
	dir    string
	suites []string
}

const (
	debianMirror  = "http://deb.debian.org/debian"
	debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	// aptFresh is how long private lists serve before apt-get update
	// fetches them again.
	aptFresh = 24 * time.Hour
)

// options are the apt-get and apt-cache options that select the private
// configuration; none for the host's.
func (a *privateApt) options() []string {
	if a == nil {
		return nil
	}
	return []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=/dev/null",
		"-o", "Dir::Etc::preferences=" + filepath.Join(a.dir, "preferences"),
		"-o", "Dir::Etc::preferencesparts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::State::status=/dev/null",
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
	}
}

// where names the private suites in messages.
func (a *privateApt) where() string {
	if a == nil {
		return ""
	}
	return " (in " + strings.Join(a.suites, ", ") + ")"
}

// update writes the configuration and fetches the lists, when force is set
// or they are missing or older than aptFresh. It needs no root: every
// file is in the cache.
func (a *privateApt) update(force bool) error {
	stamp := filepath.Join(a.dir, "updated")
	if fi, err := os.Stat(stamp); err == nil && !force && time.Since(fi.ModTime()) < aptFresh {
		return nil
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	var sources strings.Builder
	for _, s := range a.suites {
		suite, component, ok := strings.Cut(s, "/")
		if !ok {
			component = "main"
		}
		// target=Packages: no translations, DEP-11 or Contents.
		fmt.Fprintf(&sources, "deb [signed-by=%s target=Packages] %s %s %s\n", debianKeyring, debianMirror, suite, component)
	}
	for name, data := range map[string]string{
		"sources.list": sources.String(),
		"preferences":  "Package: *\nPin: release a=*\nPin-Priority: 500\n",
	} {
		if err := os.WriteFile(filepath.Join(a.dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	args := append(a.options(), "update", "-qq")
	if out, err := exec.Command("apt-get", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update%s: %w\n%s", a.where(), err, out)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// Unpacked returns the folder dir/NAME holding a Debian package of the
// host's apt sources unpacked, downloading it when missing (see unpacked).
// Call it inside WithCache.
func Unpacked(dir string, resolve func() (name, spec string, err error), glob string) (string, error) {
	return unpacked(dir, nil, resolve, glob)
}

// unpacked returns the folder dir/NAME holding a Debian package unpacked,
// downloading it when missing: resolve names it (NAME, and the spec
// apt-get download takes), through apt (nil: the host's). The lists are
// fetched again when resolving fails: the host's with apt-get update (as
// root only), private ones whenever stale. When apt still cannot resolve
// it (offline), the newest earlier download matching glob serves.
func unpacked(dir string, apt *privateApt, resolve func() (name, spec string, err error), glob string) (string, error) {
	var updateErr error
	if apt != nil {
		updateErr = apt.update(false)
	}
	name, spec, resolveErr := resolve()
	if resolveErr != nil && !errors.As(resolveErr, new(noDependencyError)) {
		switch {
		case apt != nil:
			updateErr = apt.update(true)
			if updateErr == nil {
				name, spec, resolveErr = resolve()
			}
		case os.Geteuid() == 0:
			// A fresh machine may have no package lists yet.
			if exec.Command("apt-get", "update", "-qq").Run() == nil {
				name, spec, resolveErr = resolve()
			}
		}
	}
	if resolveErr != nil {
		// Offline: use what an earlier run unpacked, if anything.
		matches, _ := filepath.Glob(filepath.Join(dir, glob))
		if len(matches) == 0 {
			return "", errors.Join(resolveErr, updateErr)
		}
		return matches[len(matches)-1], nil
	}
	root := filepath.Join(dir, name)
	if _, err := os.Stat(root); err != nil {
		if err := download(dir, apt, spec, name); err != nil {
			return "", err
		}
	}
	return root, nil
}

// download unpacks the package apt-get download spec fetches into dir/name.
func download(dir string, apt *privateApt, spec, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", append(apt.options(), "download", spec)...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s%s: %w\n%s", spec, apt.where(), err, out)
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
	raw, err := k.RawBTF()
	if err != nil {
		return nil, err
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: .BTF: %w", k.Vmlinuz, err)
	}
	return spec, nil
}

// RawBTF is [Kernel.BTF] undecoded: the bytes of
// /sys/kernel/btf/vmlinux in the guest.
func (k Kernel) RawBTF() ([]byte, error) {
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
	return sec.Data()
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
