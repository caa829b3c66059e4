package gen

import (
	"fmt"
	"go/token"
	"sort"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// accessors is the registry of C structs and unions that get accessor
// types. An accessor starts as a stub (a type with no member methods);
// it gets its members when a stub selects one of them (see settle) or when
// it lies within an annotation's depth=.
type accessors struct {
	spec   *cbtf.Spec
	byType map[cbtf.Type]*accessor
	order  []*accessor
	names  map[string]*accessor
}

type accessor struct {
	typ    cbtf.Type // *cbtf.Struct or *cbtf.Union
	goName string
	cName  string
	// base and path locate the type's members for checks against other
	// kernels: a named type is its own base; an anonymous one is reached
	// by path from its parent's base.
	base, path string
	// keep > 0: every member is generated, used or not, and the types
	// they lead to get keep-1 (pointers) or keep (embedded).
	keep int
	// full: the member methods exist (all of them until settled).
	full    bool
	members []*Member
	// used are the Go names of members the stubs select, with the first
	// selection's position.
	used map[string]token.Position
}

func newAccessors(spec *cbtf.Spec) *accessors {
	return &accessors{spec: spec, byType: map[cbtf.Type]*accessor{}, names: map[string]*accessor{}}
}

// composite is the struct or union t stands for, through typedefs and
// qualifiers, and the typedef name met on the way ("" when none).
func composite(t cbtf.Type) (cbtf.Type, string) {
	typedef := ""
	for range 64 {
		switch v := t.(type) {
		case *cbtf.Typedef:
			if typedef == "" {
				typedef = v.Name
			}
			t = v.Type
		case *cbtf.Const:
			t = v.Type
		case *cbtf.Volatile:
			t = v.Type
		case *cbtf.Restrict:
			t = v.Type
		case *cbtf.TypeTag:
			t = v.Type
		case *cbtf.Struct, *cbtf.Union:
			return v, typedef
		default:
			return nil, ""
		}
	}
	return nil, ""
}

// compositeName is the C name member paths through a pointer to t start
// from: the struct's or union's own name, or a typedef's for an anonymous
// one; "" when t is not a struct or union with a usable name.
func compositeName(t cbtf.Type) string {
	c, typedef := composite(t)
	if c == nil {
		return ""
	}
	if name := c.TypeName(); isCIdent(name) {
		return name
	}
	if isCIdent(typedef) {
		return typedef
	}
	return ""
}

// want registers t (a struct or union, possibly behind typedefs) and
// returns its accessor's Go name; depth > 0 keeps its members whether used
// or not. hint names an anonymous type after where it was met.
func (a *accessors) want(t cbtf.Type, depth int) string { return a.wantNamed(t, depth, nil, "", "") }

// wantNamed is want for the member of parent called member, reached by the
// path element elem (member, or member[0] for an array's elements), which
// name and locate the type if it is anonymous.
func (a *accessors) wantNamed(t cbtf.Type, depth int, parent *accessor, member, elem string) string {
	c, typedef := composite(t)
	if c == nil {
		return ""
	}
	if acc, ok := a.byType[c]; ok {
		if depth > acc.keep {
			acc.keep = depth
			acc.full = true
			acc.members = nil
		}
		return acc.goName
	}
	kind := "struct"
	if _, ok := c.(*cbtf.Union); ok {
		kind = "union"
	}
	name, cname, base, path := "", "", compositeName(t), ""
	switch {
	case isCIdent(c.TypeName()):
		name, cname = goName(c.TypeName()), kind+" "+c.TypeName()
	case isCIdent(typedef):
		name, cname = goName(typedef), typedef
	case parent != nil:
		name = parent.goName + goName(member)
		cname = fmt.Sprintf("%s {...} (%s in %s)", kind, elem, parent.cName)
		base, path = parent.base, joinPath(parent.path, elem)
	default:
		name, cname = "Anonymous"+goName(kind), kind+" {...}"
	}
	if other, taken := a.names[name]; taken && other.typ != c {
		base := name
		name = base + goName(kind)
		for i := 2; a.names[name] != nil; i++ {
			name = fmt.Sprintf("%s%s%d", base, goName(kind), i)
		}
	}
	acc := &accessor{typ: c, goName: name, cName: cname, base: base, path: path, keep: depth, full: depth > 0, used: map[string]token.Position{}}
	a.byType[c] = acc
	a.names[name] = acc
	a.order = append(a.order, acc)
	return name
}

// byName is the accessor called name, or nil.
func (a *accessors) byName(name string) *accessor { return a.names[name] }

// memberList returns acc's member methods, computing them once: one per
// visible member with a C identifier for a name, named so the name a user
// knows gets the plain Go name whatever the BTF order.
func (a *accessors) memberList(acc *accessor) []*Member {
	if acc.members != nil {
		return acc.members
	}
	visible := fbtf.VisibleMembers(acc.typ)
	var cnames []string
	for _, m := range visible {
		if isCIdent(m.Name) {
			cnames = append(cnames, m.Name)
		}
	}
	names := uniqueNames(cnames, map[string]bool{"Ptr": true})
	seen := map[string]bool{}
	for _, m := range visible {
		if !isCIdent(m.Name) || seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		mem := &Member{CName: m.Name, GoName: names[m.Name], CType: fbtf.CType(m.Type)}
		if !a.typeMember(acc, mem, m) {
			continue
		}
		acc.members = append(acc.members, mem)
	}
	if acc.members == nil {
		acc.members = []*Member{}
	}
	return acc.members
}

// typeMember fills in how mem is read; false when it cannot be (floats,
// function pointers, flexible arrays).
func (a *accessors) typeMember(acc *accessor, mem *Member, m cbtf.Member) bool {
	u := cbtf.UnderlyingType(m.Type)
	if size, signed, ok := intOf(u); ok {
		// Bitfields too: relocation picks the load and shifts per kernel.
		t, ok := scalarGoType(size, signed)
		mem.Kind, mem.GoType = ValueScalar, t
		return ok
	}
	if c, _ := composite(m.Type); c != nil {
		mem.Kind = ValueEmbedded
		mem.GoType = a.wantNamed(m.Type, acc.keep, acc, m.Name, m.Name)
		return true
	}
	switch v := u.(type) {
	case *cbtf.Pointer:
		if base := compositeName(v.Target); base != "" {
			mem.Kind, mem.Base = ValuePtr, base
			mem.GoType = a.want(v.Target, max(acc.keep-1, 0))
			return true
		}
		mem.Kind, mem.GoType = ValueScalar, "uint64"
		return true
	case *cbtf.Array:
		if v.Nelems == 0 {
			return false
		}
		mem.Len = int(v.Nelems)
		elem := cbtf.UnderlyingType(v.Type)
		if size, signed, ok := intOf(elem); ok {
			t, ok := scalarGoType(size, signed)
			mem.Kind, mem.GoType = ValueArray, t
			return ok
		}
		if _, ok := elem.(*cbtf.Pointer); ok {
			mem.Kind, mem.GoType = ValueArray, "uint64"
			return true
		}
		if c, _ := composite(v.Type); c != nil {
			mem.Kind = ValueArrayAcc
			mem.GoType = a.wantNamed(v.Type, acc.keep, acc, m.Name, m.Name+"[0]")
			return true
		}
	}
	return false
}

// joinPath appends a member to a C member path.
func joinPath(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

func intOf(t cbtf.Type) (size int, signed, ok bool) {
	switch v := t.(type) {
	case *cbtf.Int:
		return int(v.Size), v.Encoding == cbtf.Signed, true
	case *cbtf.Enum:
		return int(v.Size), v.Signed, true
	}
	return 0, false, false
}

// root is an accessor an argument names, and the argument's position.
type root struct {
	name string
	pos  token.Position
}

// model lists the accessors for a round of type checking (settled false:
// every accessor, full ones with all members) or for the generated file
// (settled true: only what the stubs reach from roots, with the members
// they use, each positioned where the stubs first reach it).
func (a *accessors) model(roots []root, settled bool) []*Accessor {
	// Members first, until nothing changes: computing one accessor's
	// members can make another full (a depth= reaching it), which must
	// then have its members in this very round.
	for again := true; again; {
		again = false
		for i := 0; i < len(a.order); i++ {
			if acc := a.order[i]; acc.full && acc.members == nil {
				a.memberList(acc)
				again = true
			}
		}
	}
	var out []*Accessor
	if !settled {
		for i := 0; i < len(a.order); i++ {
			acc := a.order[i]
			var members []*Member
			if acc.full {
				members = a.memberList(acc)
			}
			out = append(out, &Accessor{GoName: acc.goName, CName: acc.cName, Members: members})
		}
	} else {
		included := map[string]bool{}
		// An argument's type is where its argument is, wherever else the
		// stubs reach it.
		at := map[string]token.Position{}
		for _, r := range roots {
			if _, ok := at[r.name]; !ok {
				at[r.name] = r.pos
			}
		}
		var visit func(name string, pos token.Position)
		visit = func(name string, pos token.Position) {
			acc := a.byName(name)
			if acc == nil || included[name] {
				return
			}
			if p, ok := at[name]; ok {
				pos = p
			}
			included[name] = true
			entry := &Accessor{GoName: acc.goName, CName: acc.cName, Members: []*Member{}, Pos: Pos{pos}}
			out = append(out, entry)
			if !acc.full {
				return
			}
			for _, m := range a.memberList(acc) {
				use, used := acc.used[m.GoName]
				if !used {
					if acc.keep == 0 {
						continue
					}
					use = pos
				}
				positioned := *m
				positioned.Pos = Pos{use}
				entry.Members = append(entry.Members, &positioned)
				if m.Kind != ValueScalar && m.Kind != ValueArray {
					visit(m.GoType, use)
				}
			}
		}
		for _, r := range roots {
			visit(r.name, r.pos)
		}
		for _, acc := range a.order {
			if acc.keep > 0 {
				visit(acc.goName, token.Position{})
			}
		}
		// By name, not BTF order: the same stubs give the same file on
		// kernels that order members differently.
		for _, acc := range out {
			sort.Slice(acc.Members, func(i, j int) bool { return acc.Members[i].GoName < acc.Members[j].GoName })
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GoName < out[j].GoName })
	return out
}
