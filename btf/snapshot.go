package btf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	cbtf "github.com/cilium/ebpf/btf"
)

// SnapshotOptions selects what a snapshot keeps.
type SnapshotOptions struct {
	// Funcs are the kernel functions whose prototypes are kept: FUNC, of
	// vmlinux or else of the one module that defines it, or MODULE:FUNC.
	Funcs []string
	// Tracepoints are the tracepoints (sched_process_exec) whose
	// prototypes, the typedefs btf_trace_NAME, are kept.
	Tracepoints []string
	// Types are further structs or unions kept by name (for example
	// sockaddr_in, which code casts a struct sockaddr * to), MODULE:NAME
	// for a module's own.
	Types []string
	// Depth is how many pointer hops from a root keep their target; a
	// pointer further away becomes void *. Zero keeps every pointer.
	Depth int
	// Modules has the BTF of the kernel's modules, on the spec given to
	// Snapshot; nil: those a snapshot spec keeps. A module's types are
	// kept tagged with the module, in the one blob.
	Modules *Modules
}

// Snapshot marshals the types reachable from opts' roots into a raw BTF blob
// that [LoadFile] and cilium/ebpf's btf.LoadSpecFromReader read back. Pointers
// to function prototypes always become void *: nothing reads through them.
// Types of kernel modules are kept in the same blob, marked as the
// module's (see [NewModules]).
func Snapshot(spec *cbtf.Spec, opts SnapshotOptions) ([]byte, error) {
	mods := opts.Modules
	switch {
	case mods == nil:
		mods = NewModules(spec, nil)
	case mods.Base() != spec:
		return nil, errors.New("snapshot: the modules' BTF builds on another spec than the one given")
	}
	var roots []cbtf.Type
	used := map[string]Types{}
	for _, name := range opts.Funcs {
		mod, fn := SplitTarget(name)
		v := mods.Validate(mod, fn, nil)
		if v.Func == nil {
			return nil, fmt.Errorf("snapshot: %w", v.Err)
		}
		if v.Module != "" {
			used[v.Module], _ = mods.Module(v.Module)
		}
		roots = append(roots, v.Func.BTF)
	}
	for _, name := range opts.Types {
		mod, typ := SplitTarget(name)
		scope, err := mods.Scope(mod)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		t, err := LookupComposite(scope, typ)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if mod != "" {
			used[mod], _ = mods.Module(mod)
		}
		roots = append(roots, t)
	}
	// A tracepoint is a typedef of a pointer to its prototype; pointers to
	// prototypes are cut, so the prototype is a root of its own and the
	// pointer is joined to its copy after.
	type joint struct{ typedef, proto int }
	var joints []joint
	for _, name := range opts.Tracepoints {
		var td *cbtf.Typedef
		if err := spec.TypeByName(tracepointPrefix+name, &td); err != nil {
			return nil, fmt.Errorf("snapshot: tracepoint %s: %w", name, err)
		}
		ptr, ok := td.Type.(*cbtf.Pointer)
		if !ok {
			return nil, fmt.Errorf("snapshot: tracepoint %s: %s is not a function pointer", name, td.Name)
		}
		joints = append(joints, joint{len(roots), len(roots) + 1})
		roots = append(roots, td, ptr.Target)
		var fn *cbtf.Func
		if spec.TypeByName(tracepointFuncPrefix+name, &fn) == nil {
			roots = append(roots, fn)
		}
	}
	copies, copied := cutCopy(roots, opts.Depth)
	for _, j := range joints {
		copies[j.typedef].(*cbtf.Typedef).Type.(*cbtf.Pointer).Target = copies[j.proto]
	}
	if len(used) > 0 {
		var names []string
		for orig, c := range copied {
			if mod := mods.owner(orig, used); mod != "" && moduleTag(c) == "" {
				setModuleTag(c, mod)
			}
		}
		for name := range used {
			names = append(names, name)
		}
		slices.Sort(names)
		copies = append(copies, modulesMarkerType(names))
	}
	// Never write what LoadFile would refuse (nor hand cilium/ebpf's
	// marshaller a type that refers to none: it panics).
	if err := checkTypes(copies, func(cbtf.Type) string { return "" }); err != nil {
		return nil, fmt.Errorf("snapshot: invalid BTF: %w", err)
	}
	b, err := cbtf.NewBuilder(copies, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return b.Marshal(nil, &cbtf.MarshalOptions{Order: binary.LittleEndian, PreventNoTypeFound: true})
}

type pending struct {
	slot  *cbtf.Type
	orig  cbtf.Type
	depth int
}

// cutCopy copies roots and everything they reach breadth first, so that a
// type is copied at the smallest pointer depth it is reached at. It
// returns the roots' copies, and every copy by its original.
func cutCopy(roots []cbtf.Type, maxDepth int) ([]cbtf.Type, map[cbtf.Type]cbtf.Type) {
	copied := map[cbtf.Type]cbtf.Type{}
	out := make([]cbtf.Type, len(roots))
	var queue []pending
	for i, r := range roots {
		queue = append(queue, pending{&out[i], r, 0})
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if c, ok := copied[p.orig]; ok {
			*p.slot = c
			continue
		}
		c, kids := shallowCopy(p.orig)
		copied[p.orig] = c
		*p.slot = c
		if ptr, ok := c.(*cbtf.Pointer); ok {
			target, _ := underlying(ptr.Target)
			_, fn := target.(*cbtf.FuncProto)
			if fn || (maxDepth > 0 && p.depth >= maxDepth) {
				ptr.Target = &cbtf.Void{}
				continue
			}
			queue = append(queue, pending{&ptr.Target, kids[0], p.depth + 1})
			continue
		}
		for i, slot := range childSlots(c) {
			queue = append(queue, pending{slot, kids[i], p.depth})
		}
	}
	return out, copied
}

// shallowCopy copies t without its children, and returns the original
// children in the order childSlots yields the copy's.
func shallowCopy(t cbtf.Type) (cbtf.Type, []cbtf.Type) {
	var c cbtf.Type
	switch v := t.(type) {
	case *cbtf.Pointer:
		cp := *v
		c = &cp
	case *cbtf.Array:
		cp := *v
		c = &cp
	case *cbtf.Struct:
		cp := *v
		cp.Members = append([]cbtf.Member(nil), v.Members...)
		c = &cp
	case *cbtf.Union:
		cp := *v
		cp.Members = append([]cbtf.Member(nil), v.Members...)
		c = &cp
	case *cbtf.Typedef:
		cp := *v
		c = &cp
	case *cbtf.Const:
		cp := *v
		c = &cp
	case *cbtf.Volatile:
		cp := *v
		c = &cp
	case *cbtf.Restrict:
		cp := *v
		c = &cp
	case *cbtf.TypeTag:
		cp := *v
		c = &cp
	case *cbtf.Func:
		cp := *v
		c = &cp
	case *cbtf.FuncProto:
		cp := *v
		cp.Params = append([]cbtf.FuncParam(nil), v.Params...)
		c = &cp
	case *cbtf.Enum:
		cp := *v
		cp.Values = append([]cbtf.EnumValue(nil), v.Values...)
		c = &cp
	case *cbtf.Int:
		cp := *v
		c = &cp
	case *cbtf.Fwd:
		cp := *v
		c = &cp
	case *cbtf.Float:
		cp := *v
		c = &cp
	default:
		// Void and anything without children is shared as is.
		return t, nil
	}
	var kids []cbtf.Type
	for _, slot := range childSlots(c) {
		kids = append(kids, *slot)
	}
	return c, kids
}

func childSlots(t cbtf.Type) []*cbtf.Type {
	switch v := t.(type) {
	case *cbtf.Pointer:
		return []*cbtf.Type{&v.Target}
	case *cbtf.Array:
		return []*cbtf.Type{&v.Index, &v.Type}
	case *cbtf.Struct:
		return memberSlots(v.Members)
	case *cbtf.Union:
		return memberSlots(v.Members)
	case *cbtf.Typedef:
		return []*cbtf.Type{&v.Type}
	case *cbtf.Const:
		return []*cbtf.Type{&v.Type}
	case *cbtf.Volatile:
		return []*cbtf.Type{&v.Type}
	case *cbtf.Restrict:
		return []*cbtf.Type{&v.Type}
	case *cbtf.TypeTag:
		return []*cbtf.Type{&v.Type}
	case *cbtf.Func:
		return []*cbtf.Type{&v.Type}
	case *cbtf.FuncProto:
		out := []*cbtf.Type{&v.Return}
		for i := range v.Params {
			out = append(out, &v.Params[i].Type)
		}
		return out
	}
	return nil
}

func memberSlots(ms []cbtf.Member) []*cbtf.Type {
	out := make([]*cbtf.Type, len(ms))
	for i := range ms {
		out[i] = &ms[i].Type
	}
	return out
}
