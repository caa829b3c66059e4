package vmboot

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vminit"
)

// maxModuleSize bounds a decompressed module file.
const maxModuleSize = 256 << 20

// moduleTree is a kernel's modules as its Debian packages ship them:
// RELEASE/kernel/**/NAME.ko[.xz|.zst|.gz], by module name.
type moduleTree struct {
	release string
	dir     string
	files   map[string]string
	builtin map[string]bool
}

var trees sync.Map // Kernel.Package -> *moduleTree

// Modules returns where kernel k's modules are, unpacking them into the
// cache when the image's package does not hold them (7.x, whose modules
// are in linux-modules-VERSION): the folder lib/modules/RELEASE and the
// release, the guest's uname -r.
func (k Kernel) Modules() (dir, release string, err error) {
	t, err := k.moduleTree()
	if err != nil {
		return "", "", err
	}
	return t.dir, t.release, nil
}

func (k Kernel) moduleTree() (*moduleTree, error) {
	if t, ok := trees.Load(k.Package); ok {
		return t.(*moduleTree), nil
	}
	dir, err := k.modulesDir()
	if err != nil {
		return nil, fmt.Errorf("kernel %s: modules: %w", k.Name, err)
	}
	t := &moduleTree{release: filepath.Base(dir), dir: dir, files: map[string]string{}, builtin: map[string]bool{}}
	err = filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if name, ok := moduleName(d.Name()); ok {
			t.files[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel %s: modules: %w", k.Name, err)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, ok := moduleName(path.Base(sc.Text())); ok {
				t.builtin[name] = true
			}
		}
		f.Close()
	}
	trees.Store(k.Package, t)
	return t, nil
}

// moduleName is the module a file name holds (loop.ko.xz: loop;
// nf-nat.ko: nf_nat), as the kernel names it.
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if base, ok := strings.CutSuffix(file, ext); ok && base != "" {
			return strings.ReplaceAll(base, "-", "_"), true
		}
	}
	return "", false
}

// modulesDir finds lib/modules/RELEASE with a kernel/ folder in k's
// package, or in linux-modules-VERSION, downloaded and unpacked when
// missing.
func (k Kernel) modulesDir() (string, error) {
	// The package is unpacked in a folder named after it.
	root := k.Vmlinuz
	for root != filepath.Dir(root) && filepath.Base(root) != k.Package {
		root = filepath.Dir(root)
	}
	if dir, ok := findModulesDir(root); ok {
		return dir, nil
	}
	version, ok := strings.CutPrefix(k.Package, "linux-binary-")
	if !ok {
		return "", fmt.Errorf("%s holds no lib/modules/RELEASE/kernel", k.Package)
	}
	var apt *privateApt
	for _, s := range series {
		if s.Name == k.Name && len(s.Suites) > 0 {
			apt = &privateApt{suites: s.Suites}
		}
	}
	var dir string
	err := WithCache(func(cache string) error {
		if apt != nil {
			apt.dir = filepath.Join(cache, "apt", strings.ReplaceAll(strings.Join(apt.suites, "+"), "/", "_"))
		}
		modules, err := unpacked(filepath.Join(cache, "kernels"), apt, func() (string, string, error) {
			pkg, err := dependency(apt, "linux-image-"+version, "linux-modules-")
			return pkg, pkg, err
		}, "linux-modules-"+version)
		if err != nil {
			return err
		}
		var found bool
		if dir, found = findModulesDir(modules); !found {
			return fmt.Errorf("%s holds no lib/modules/RELEASE/kernel", filepath.Base(modules))
		}
		return nil
	})
	return dir, err
}

// findModulesDir is the lib/modules/RELEASE (or usr/lib/...) below root
// that has a kernel/ folder.
func findModulesDir(root string) (string, bool) {
	for _, pattern := range []string{"lib/modules/*/kernel", "usr/lib/modules/*/kernel"} {
		if m, _ := filepath.Glob(filepath.Join(root, pattern)); len(m) == 1 {
			return filepath.Dir(m[0]), true
		}
	}
	return "", false
}

// ModuleFile reads module name of kernel k, decompressed: an ELF
// relocatable file, as finit_module takes it. Built-in modules and
// modules the kernel lacks are errors saying so.
func (k Kernel) ModuleFile(name string) ([]byte, error) {
	t, err := k.moduleTree()
	if err != nil {
		return nil, err
	}
	return t.read(k, name)
}

func (t *moduleTree) read(k Kernel, name string) ([]byte, error) {
	file, ok := t.files[name]
	if !ok {
		if t.builtin[name] {
			return nil, fmt.Errorf("kernel %s: %s is built in, not a module: %w", k.Name, name, errBuiltin)
		}
		return nil, fmt.Errorf("kernel %s (%s): no module %s: %w", k.Name, k.Package, name, fs.ErrNotExist)
	}
	data, err := readModule(file)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: module %s: %w", k.Name, name, err)
	}
	return data, nil
}

// errBuiltin is wrapped by errors for a module built into the kernel.
var errBuiltin = errors.New("built in")

// readModule reads a module file, decompressing .xz, .zst and .gz.
func readModule(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(file, ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: xz: %w", file, err)
		}
		r = xr
	case strings.HasSuffix(file, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", file, err)
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(file, ".gz"):
		gr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", file, err)
		}
		r = gr
	}
	data, err := io.ReadAll(io.LimitReader(r, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > maxModuleSize {
		return nil, fmt.Errorf("%s: more than %d MiB decompressed", file, maxModuleSize>>20)
	}
	if !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("%s: not an ELF file", file)
	}
	return data, nil
}

// modinfo returns the values of key in a module's .modinfo section
// ("depends": the modules it needs, comma-separated).
func modinfo(data []byte, key string) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return "", errors.New("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return "", err
	}
	for _, entry := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(entry, []byte(key+"=")); ok {
			return string(v), nil
		}
	}
	return "", nil
}

// ModuleFiles returns the initramfs files that make vminit load the named
// modules on each of kernels, dependencies first: for each kernel the
// modules decompressed under lib/modules/RELEASE/, listed in
// vminit.ModuleList there. A module built into a kernel is left out, and a note says so.
func ModuleFiles(kernels []Kernel, names []string) (map[string]File, []string, error) {
	files := map[string]File{}
	var notes []string
	for _, k := range kernels {
		t, err := k.moduleTree()
		if err != nil {
			return nil, nil, err
		}
		var order []string
		loaded := map[string]bool{}
		var load func(name string, chain []string) error
		load = func(name string, chain []string) error {
			if loaded[name] {
				return nil
			}
			if slices.Contains(chain, name) {
				return fmt.Errorf("kernel %s: modules depend on each other in a loop: %s", k.Name, strings.Join(append(chain, name), " -> "))
			}
			data, err := t.read(k, name)
			if errors.Is(err, errBuiltin) {
				notes = append(notes, fmt.Sprintf("kernel %s: %s is built in: nothing to load", k.Name, name))
				loaded[name] = true
				return nil
			}
			if err != nil {
				if len(chain) > 0 {
					return fmt.Errorf("%s, which %s needs: %w", name, chain[len(chain)-1], err)
				}
				return err
			}
			deps, err := modinfo(data, "depends")
			if err != nil {
				return fmt.Errorf("kernel %s: module %s: %w", k.Name, name, err)
			}
			for _, dep := range strings.Split(deps, ",") {
				if dep = strings.TrimSpace(dep); dep != "" {
					if err := load(strings.ReplaceAll(dep, "-", "_"), append(chain, name)); err != nil {
						return err
					}
				}
			}
			loaded[name] = true
			files[path.Join("lib/modules", t.release, name+".ko")] = File{Mode: 0o644, Data: data}
			order = append(order, name+".ko")
			return nil
		}
		for _, name := range names {
			if err := load(strings.ReplaceAll(name, "-", "_"), nil); err != nil {
				return nil, nil, err
			}
		}
		files[path.Join("lib/modules", t.release, vminit.ModuleList)] = File{Mode: 0o644, Data: []byte(strings.Join(order, "\n") + "\n")}
	}
	return files, notes, nil
}

// ModuleBTF reads the BTF of k's modules from their files, as the guest's
// /sys/kernel/btf/MODULE holds it once the module is loaded.
func (k Kernel) ModuleBTF() fbtf.ModuleSource { return kernelModules{k} }

type kernelModules struct{ k Kernel }

func (m kernelModules) ModuleNames() ([]string, error) {
	t, err := m.k.moduleTree()
	if err != nil {
		return nil, err
	}
	names := slices.Collect(maps.Keys(t.files))
	slices.Sort(names)
	return names, nil
}

func (m kernelModules) LoadModule(name string, base *cbtf.Spec) (*cbtf.Spec, error) {
	t, err := m.k.moduleTree()
	if err != nil {
		return nil, err
	}
	data, err := t.read(m.k, name)
	if errors.Is(err, errBuiltin) {
		return nil, fmt.Errorf("%w (%w)", err, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return fbtf.LoadModuleBytes(fmt.Sprintf("kernel %s: %s.ko", m.k.Name, name), data, base)
}

// ModuleRawBTF is module name's BTF, undecoded: the bytes of
// /sys/kernel/btf/NAME in the guest once it is loaded.
func (k Kernel) ModuleRawBTF(name string) ([]byte, error) {
	data, err := k.ModuleFile(name)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("kernel %s: module %s: %w", k.Name, name, err)
	}
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, fmt.Errorf("kernel %s: module %s has no .BTF section", k.Name, name)
	}
	return sec.Data()
}
