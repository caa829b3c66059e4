package btf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	cbtf "github.com/cilium/ebpf/btf"
)

// ErrNoModule is wrapped by errors for a kernel module whose BTF is not at
// hand: not loaded on the kernel, not a module of it, or not given.
var ErrNoModule = errors.New("no BTF for this module")

// ModuleSource reads the BTF of kernel modules: split BTF, which builds on
// the vmlinux BTF of the same kernel build (its type IDs and strings
// continue vmlinux's).
type ModuleSource interface {
	// ModuleNames lists the modules it has BTF for.
	ModuleNames() ([]string, error)
	// LoadModule returns module name's BTF split on base, or an error
	// wrapping fs.ErrNotExist when it has none.
	LoadModule(name string, base *cbtf.Spec) (*cbtf.Spec, error)
}

// IsModuleName reports whether name can be a kernel module's name as
// /sys/kernel/btf and annotations spell it: letters, digits and
// underscores (the kernel turns a module file's dashes into underscores).
func IsModuleName(name string) bool {
	if name == "" || name == "vmlinux" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ModuleDir is the modules whose BTF files lie in dir, named after the
// module, as in /sys/kernel/btf (or a copy of it): every regular file
// but vmlinux. Files are read as [LoadModuleFile] reads them.
func ModuleDir(dir string) ModuleSource { return moduleDir(dir) }

type moduleDir string

func (d moduleDir) ModuleNames() ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if IsModuleName(e.Name()) && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (d moduleDir) mayName(module, name string) bool {
	return mayName(filepath.Join(string(d), module), name)
}

func (d moduleDir) LoadModule(name string, base *cbtf.Spec) (*cbtf.Spec, error) {
	if !IsModuleName(name) {
		return nil, fmt.Errorf("module %q: %w", name, fs.ErrNotExist)
	}
	path := filepath.Join(string(d), name)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return LoadModuleFile(path, base)
}

// ModuleFiles is the modules whose BTF files are given by name: raw split
// BTF (a copy of /sys/kernel/btf/MODULE) or a module's ELF file (.ko).
func ModuleFiles(files map[string]string) ModuleSource { return moduleFiles(files) }

type moduleFiles map[string]string

func (f moduleFiles) ModuleNames() ([]string, error) {
	var out []string
	for name := range f {
		out = append(out, name)
	}
	return out, nil
}

func (f moduleFiles) mayName(module, name string) bool {
	path, ok := f[module]
	return !ok || mayName(path, name)
}

func (f moduleFiles) LoadModule(name string, base *cbtf.Spec) (*cbtf.Spec, error) {
	path, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
	}
	return LoadModuleFile(path, base)
}

// ModuleSources reads from the first of srcs that has a module.
func ModuleSources(srcs ...ModuleSource) ModuleSource { return moduleSources(srcs) }

type moduleSources []ModuleSource

func (s moduleSources) ModuleNames() ([]string, error) {
	var out []string
	var errs []error
	for _, src := range s {
		names, err := src.ModuleNames()
		errs = append(errs, err)
		out = append(out, names...)
	}
	slices.Sort(out)
	return slices.Compact(out), errors.Join(errs...)
}

func (s moduleSources) mayName(module, name string) bool {
	for _, src := range s {
		if nf, ok := src.(nameFinder); !ok || nf.mayName(module, name) {
			return true
		}
	}
	return false
}

func (s moduleSources) LoadModule(name string, base *cbtf.Spec) (*cbtf.Spec, error) {
	for _, src := range s {
		spec, err := src.LoadModule(name, base)
		if !errors.Is(err, fs.ErrNotExist) {
			return spec, err
		}
	}
	return nil, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
}

// nameFinder is a source that can tell, without decoding a module's BTF,
// that it has no type called name.
type nameFinder interface {
	mayName(module, name string) bool
}

// mayName reports whether the file at path may hold a BTF type called
// name: false only when the name is nowhere in it (names sit in BTF's
// string table between NUL bytes).
func mayName(path, name string) bool {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > MaxFileSize {
		return true
	}
	return bytes.Contains(data, []byte("\x00"+name+"\x00"))
}

// LoadModuleFile reads a kernel module's BTF, split on base: a raw blob as
// /sys/kernel/btf/MODULE holds it, or the .BTF section of the module's ELF
// file (NAME.ko; decompress a .ko.xz or .ko.zst first). It is bounded and
// checked as [LoadFile] is; errors start with path.
func LoadModuleFile(path string, base *cbtf.Spec) (*cbtf.Spec, error) {
	raw, err := readFile(path)
	if err == nil {
		var spec *cbtf.Spec
		if spec, err = parse(raw, base); err == nil {
			return spec, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", path, err)
}

// LoadModuleBytes is [LoadModuleFile] for data in memory; errors start
// with name.
func LoadModuleBytes(name string, data []byte, base *cbtf.Spec) (*cbtf.Spec, error) {
	raw, err := readBytes(data)
	if err == nil {
		var spec *cbtf.Spec
		if spec, err = parse(raw, base); err == nil {
			return spec, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", name, err)
}

// Modules is a kernel's BTF with its modules': vmlinux's (Base), the
// modules a snapshot of it keeps, and the modules a [ModuleSource] reads,
// each read and checked when first asked for.
type Modules struct {
	base   *cbtf.Spec
	src    ModuleSource
	pinned []string
	mu     sync.Mutex
	loaded map[string]loadedModule
	names  []string
}

type loadedModule struct {
	types Types
	err   error
}

// NewModules returns the modules of the kernel whose vmlinux BTF is base:
// those a snapshot base keeps, then those src reads (src may be nil).
func NewModules(base *cbtf.Spec, src ModuleSource) *Modules {
	return &Modules{base: base, src: src, pinned: snapshotModules(base), loaded: map[string]loadedModule{}}
}

// Base is vmlinux's BTF as given (a snapshot's holds its modules' types
// too: look names up in [Modules.Vmlinux]).
func (m *Modules) Base() *cbtf.Spec { return m.base }

// Names lists the modules with BTF at hand, sorted (those a source cannot
// list are left out).
func (m *Modules) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names == nil {
		names := slices.Clone(m.pinned)
		if m.src != nil {
			more, _ := m.src.ModuleNames()
			names = append(names, more...)
		}
		slices.Sort(names)
		m.names = append([]string{}, slices.Compact(names)...)
	}
	return m.names
}

// Vmlinux is vmlinux's own types: a snapshot's without those of the
// modules it keeps.
func (m *Modules) Vmlinux() Types {
	if len(m.pinned) == 0 {
		return m.base
	}
	return view{m.base, func(t cbtf.Type) bool { return moduleTag(t) == "" }}
}

// Module is the types module name defines: its functions, and the
// structs and unions of its own (it refers to vmlinux's too). The error
// wraps ErrNoModule when its BTF is not at hand.
func (m *Modules) Module(name string) (Types, error) {
	m.mu.Lock()
	l, ok := m.loaded[name]
	m.mu.Unlock()
	if ok {
		return l.types, l.err
	}
	l = m.load(name)
	m.mu.Lock()
	if prev, ok := m.loaded[name]; ok {
		l = prev
	} else {
		m.loaded[name] = l
	}
	m.mu.Unlock()
	return l.types, l.err
}

func (m *Modules) load(name string) loadedModule {
	if slices.Contains(m.pinned, name) {
		return loadedModule{types: view{m.base, func(t cbtf.Type) bool { return moduleTag(t) == name }}}
	}
	if m.src == nil || !IsModuleName(name) {
		return loadedModule{err: m.noModule(name)}
	}
	spec, err := m.src.LoadModule(name, m.base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return loadedModule{err: m.noModule(name)}
	case err != nil:
		return loadedModule{err: fmt.Errorf("module %s: %w", name, err)}
	}
	return loadedModule{types: spec}
}

// noModule is the error for a module without BTF, with near names.
func (m *Modules) noModule(name string) error {
	names := m.Names()
	near := Nearest(name, names, 3)
	switch {
	case len(names) == 0:
		return fmt.Errorf("module %s: %w", name, ErrNoModule)
	case len(near) > 0:
		return fmt.Errorf("module %s: %w (did you mean %s?)", name, ErrNoModule, strings.Join(near, ", "))
	case len(names) <= 8:
		return fmt.Errorf("module %s: %w (have %s)", name, ErrNoModule, strings.Join(names, ", "))
	}
	return fmt.Errorf("module %s: %w (%d other modules have BTF)", name, ErrNoModule, len(names))
}

// Scope is where a probe on a function of module name looks types up: the
// module's types first, then vmlinux's; vmlinux's alone for name "".
func (m *Modules) Scope(name string) (Types, error) {
	if name == "" {
		return m.Vmlinux(), nil
	}
	mod, err := m.Module(name)
	if err != nil {
		return nil, err
	}
	return chain{mod, m.Vmlinux()}, nil
}

// FuncModules lists the modules whose BTF defines a function called fn,
// reading every module's BTF there is. Modules whose BTF does not read
// are skipped; the error joins why.
func (m *Modules) FuncModules(fn string) ([]string, error) { return m.funcModules(fn, false) }

// funcModules is FuncModules; cheap leaves out the modules of a source
// that cannot tell cheaply whether a module's BTF has the name.
func (m *Modules) funcModules(fn string, cheap bool) ([]string, error) {
	var out []string
	var errs []error
	nf, _ := m.src.(nameFinder)
	for _, name := range m.Names() {
		pinned := slices.Contains(m.pinned, name)
		if !pinned && (nf != nil && !nf.mayName(name, fn) || nf == nil && cheap) {
			continue
		}
		mod, err := m.Module(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		types, _ := mod.AnyTypesByName(fn)
		for _, t := range types {
			if _, ok := t.(*cbtf.Func); ok {
				out = append(out, name)
				break
			}
		}
	}
	return out, errors.Join(errs...)
}

// view is a spec's types that keep accepts.
type view struct {
	spec *cbtf.Spec
	keep func(cbtf.Type) bool
}

func (v view) AnyTypesByName(name string) ([]cbtf.Type, error) {
	types, err := v.spec.AnyTypesByName(name)
	if err != nil {
		return nil, err
	}
	types = slices.DeleteFunc(types, func(t cbtf.Type) bool { return !v.keep(t) })
	if len(types) == 0 {
		return nil, fmt.Errorf("%s: %w", name, cbtf.ErrNotFound)
	}
	return types, nil
}

func (v view) All() iter.Seq2[cbtf.Type, error] {
	return func(yield func(cbtf.Type, error) bool) {
		for t, err := range v.spec.All() {
			if err == nil && !v.keep(t) {
				continue
			}
			if !yield(t, err) {
				return
			}
		}
	}
}

// chain looks names up in each of its Types in turn: the first that has
// the name answers.
type chain []Types

func (c chain) AnyTypesByName(name string) ([]cbtf.Type, error) {
	for _, t := range c {
		types, err := t.AnyTypesByName(name)
		if !errors.Is(err, cbtf.ErrNotFound) {
			return types, err
		}
	}
	return nil, fmt.Errorf("%s: %w", name, cbtf.ErrNotFound)
}

func (c chain) All() iter.Seq2[cbtf.Type, error] {
	return func(yield func(cbtf.Type, error) bool) {
		for _, t := range c {
			for typ, err := range t.All() {
				if !yield(typ, err) {
					return
				}
				if err != nil {
					break
				}
			}
		}
	}
}

// owner is which of the modules in used (by name, with their types)
// defines t, "" for vmlinux.
func (m *Modules) owner(t cbtf.Type, used map[string]Types) string {
	if tag := moduleTag(t); tag != "" && tag != modulesMarker {
		return tag
	}
	if _, err := m.base.TypeID(t); err == nil {
		return ""
	}
	for name, types := range used {
		if spec, ok := types.(*cbtf.Spec); ok {
			if _, err := spec.TypeID(t); err == nil {
				return name
			}
		}
	}
	return ""
}
