package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// moduleFiles is the repeatable -btf-module flag: [NAME=]FILE, the BTF of
// kernel module NAME (by default FILE's name without .ko or .btf).
type moduleFiles map[string]string

const moduleUsage = "read kernel module `[name=]file`'s BTF (repeatable): a copy of /sys/kernel/btf/NAME or NAME.ko, split on -btf's vmlinux BTF of the same kernel build"

func (m moduleFiles) String() string {
	var out []string
	for name, file := range m {
		out = append(out, name+"="+file)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (m moduleFiles) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok {
		file = v
		name = filepath.Base(file)
		for _, ext := range []string{".ko", ".btf"} {
			name = strings.TrimSuffix(name, ext)
		}
		name = strings.ReplaceAll(name, "-", "_")
	}
	if !fbtf.IsModuleName(name) {
		if !ok {
			return fmt.Errorf("%q: the file's name is no module's name: write NAME=FILE", v)
		}
		return fmt.Errorf("%q: want NAME=FILE with NAME a module's name (letters, digits, _)", v)
	}
	if file == "" {
		return fmt.Errorf("%q: no file", v)
	}
	if _, dup := m[name]; dup {
		return fmt.Errorf("module %s given twice", name)
	}
	m[name] = file
	return nil
}

// moduleSource is where the BTF of the modules of the kernel whose vmlinux
// BTF is at from comes from: the files given, then, when from is a file
// called vmlinux (/sys/kernel/btf/vmlinux or a copy of that folder), the
// files beside it.
func moduleSource(from string, files moduleFiles) fbtf.ModuleSource {
	var srcs []fbtf.ModuleSource
	if len(files) > 0 {
		srcs = append(srcs, fbtf.ModuleFiles(files))
	}
	if filepath.Base(from) == "vmlinux" {
		srcs = append(srcs, fbtf.ModuleDir(filepath.Dir(from)))
	}
	return fbtf.ModuleSources(srcs...)
}

// modulesOf is the kernel's modules for BTF spec read from from.
func modulesOf(spec *cbtf.Spec, from string, files moduleFiles) *fbtf.Modules {
	return fbtf.NewModules(spec, moduleSource(from, files))
}
