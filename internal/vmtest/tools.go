package vmtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"github.com/fentrygen/fentrygen/internal/vmboot"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

const (
	// toolDir holds libbpf-tools' programs, in the guest as in the package.
	toolDir = "/usr/sbin"
	// libDir holds, in the guest, the libraries the tools need, with the
	// dynamic loader that runs them.
	libDir = "/lib/fentrygen"
	loader = "ld-linux-x86-64.so.2"
)

// toolPackages are the Debian packages Tools takes files from: the tools,
// and the libraries they link (libelf, zlib, glibc with its loader).
var toolPackages = []string{"libbpf-tools", "libelf1", "zlib1g", "libc6"}

// toolLibs are the libraries packed with the tools, by soname.
var toolLibs = []string{loader, "libc.so.6", "libelf.so.1", "libz.so.1"}

// Tool returns a command that runs, in the guest, the libbpf-tools program
// name (packed by [Tools]) with args, as
// `/lib/fentrygen/ld-linux-x86-64.so.2 --library-path /lib/fentrygen
// /usr/sbin/NAME ARGS...`. When the guest has no such program, the
// command's Start says so.
func Tool(name string, args ...string) *exec.Cmd {
	prog := path.Join(toolDir, name)
	cmd := exec.Command(path.Join(libDir, loader), append([]string{"--library-path", libDir, prog}, args...)...)
	if _, err := os.Stat(prog); err != nil || !InVM() {
		cmd.Err = fmt.Errorf("vmtest.Tool: the guest has no %s: name it in vmtest.Main(m, vmtest.Tools(...)), and run it in a VM test", prog)
	}
	return cmd
}

// toolRoots unpacks (once, in the cache) the Debian packages the tools
// come from, and returns each one's folder by package.
func toolRoots() (map[string]string, error) {
	roots := map[string]string{}
	err := vmboot.WithCache(func(cache string) error {
		dir := filepath.Join(cache, "debs")
		for _, pkg := range toolPackages {
			root, err := vmboot.Unpacked(dir, func() (string, string, error) {
				v, err := candidate(pkg)
				return pkg + "_" + v, pkg + "=" + v, err
			}, pkg+"_*")
			if err != nil {
				return vmboot.MissingError{Err: fmt.Errorf("vmtest.Tools: %w", err)}
			}
			roots[pkg] = root
		}
		return nil
	})
	return roots, err
}

// ToolBinary is the host path of the libbpf-tools program name, from
// Debian's package unpacked in the cache (downloaded when missing): for
// reading, say its BPF object, not for running on the host.
func ToolBinary(name string) (string, error) {
	roots, err := toolRoots()
	if err != nil {
		return "", err
	}
	prog := filepath.Join(roots["libbpf-tools"], toolDir, name)
	if name == "" || strings.Contains(name, "/") || !regular(prog) {
		return "", fmt.Errorf("libbpf-tools has no %q", name)
	}
	return prog, nil
}

// toolFiles returns the initramfs files for the named tools: the programs
// and the libraries, from Debian's packages unpacked in the cache.
func toolFiles(names []string) (map[string]vmboot.File, error) {
	roots, err := toolRoots()
	if err != nil {
		return nil, err
	}
	files := map[string]vmboot.File{}
	needed := map[string]string{} // soname -> who needs it
	add := func(guest, host string) error {
		data, err := os.ReadFile(host)
		if err != nil {
			return err
		}
		files[guest] = vmboot.File{Mode: 0o755, Data: data}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
		libs, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
		for _, l := range libs {
			needed[l] = path.Base(guest)
		}
		return nil
	}
	for _, name := range names {
		prog := filepath.Join(roots["libbpf-tools"], toolDir, name)
		if name == "" || strings.Contains(name, "/") || !regular(prog) {
			have, _ := os.ReadDir(filepath.Join(roots["libbpf-tools"], toolDir))
			var list []string
			for _, e := range have {
				list = append(list, e.Name())
			}
			return nil, fmt.Errorf("vmtest.Tools: libbpf-tools has no %q (it has %s)", name, strings.Join(list, ", "))
		}
		if err := add(strings.TrimPrefix(path.Join(toolDir, name), "/"), prog); err != nil {
			return nil, err
		}
	}
	for _, lib := range toolLibs {
		src, err := findLib(roots, lib)
		if err != nil {
			return nil, err
		}
		if err := add(strings.TrimPrefix(path.Join(libDir, lib), "/"), src); err != nil {
			return nil, err
		}
	}
	for lib, by := range needed {
		if !slices.Contains(toolLibs, lib) {
			return nil, fmt.Errorf("vmtest.Tools: %s needs %s, which is not packed", by, lib)
		}
	}
	return files, nil
}

// candidate is the version apt would install of pkg.
func candidate(pkg string) (string, error) {
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache show %s: %w (run apt-get update?)", pkg, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Version: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("apt-cache show %s: no Version", pkg)
}

// findLib finds a library by soname in the unpacked packages, following
// symbolic links inside each package's tree.
func findLib(roots map[string]string, soname string) (string, error) {
	for _, pkg := range toolPackages {
		for _, dir := range []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64"} {
			if p, ok := resolveIn(roots[pkg], path.Join(dir, soname)); ok {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("vmtest.Tools: %s is in none of %s", soname, strings.Join(toolPackages, ", "))
}

// resolveIn follows rel's symbolic links inside the tree at root (absolute
// targets count from root) to a regular file.
func resolveIn(root, rel string) (string, bool) {
	for range 8 {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return "", false
		}
		if fi.Mode().IsRegular() {
			return p, true
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return "", false
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", false
		}
		if path.IsAbs(target) {
			rel = target
		} else {
			rel = path.Join(path.Dir(rel), target)
		}
	}
	return "", false
}

func regular(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
