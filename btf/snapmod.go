package btf

import (
	"slices"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// A snapshot keeps the types of kernel modules beside vmlinux's in one
// blob: each struct, union, typedef and function a module defines carries
// the decl tag moduleTagPrefix+MODULE, and an empty struct called
// modulesMarker carries the names of the modules kept as its tags, so
// that they are found without reading every type.
const (
	moduleTagPrefix = "fentrygen.module="
	modulesMarker   = "__fentrygen_modules"
)

// moduleTag is the module a snapshot's type belongs to, "" for vmlinux.
func moduleTag(t cbtf.Type) string {
	var tags []string
	switch v := t.(type) {
	case *cbtf.Struct:
		if v.Name == modulesMarker {
			return modulesMarker
		}
		tags = v.Tags
	case *cbtf.Union:
		tags = v.Tags
	case *cbtf.Typedef:
		tags = v.Tags
	case *cbtf.Func:
		tags = v.Tags
	}
	for _, tag := range tags {
		if name, ok := strings.CutPrefix(tag, moduleTagPrefix); ok {
			return name
		}
	}
	return ""
}

// setModuleTag marks a snapshot's copy of a type as module's, when it is
// of a kind that is looked up by name.
func setModuleTag(t cbtf.Type, module string) {
	tag := moduleTagPrefix + module
	switch v := t.(type) {
	case *cbtf.Struct:
		v.Tags = append(slices.Clip(v.Tags), tag)
	case *cbtf.Union:
		v.Tags = append(slices.Clip(v.Tags), tag)
	case *cbtf.Typedef:
		v.Tags = append(slices.Clip(v.Tags), tag)
	case *cbtf.Func:
		v.Tags = append(slices.Clip(v.Tags), tag)
	}
}

// modulesMarkerType lists the modules a snapshot keeps.
func modulesMarkerType(modules []string) *cbtf.Struct {
	return &cbtf.Struct{Name: modulesMarker, Tags: slices.Clone(modules)}
}

// snapshotModules are the modules a snapshot keeps (none for other BTF).
func snapshotModules(spec *cbtf.Spec) []string {
	if spec == nil {
		return nil
	}
	types, _ := spec.AnyTypesByName(modulesMarker)
	var out []string
	for _, t := range types {
		if marker, ok := t.(*cbtf.Struct); ok {
			for _, name := range marker.Tags {
				if IsModuleName(name) {
					out = append(out, name)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
