package btf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// ErrUnknownMember is wrapped by errors for a path element that names no
// member.
var ErrUnknownMember = errors.New("no such member")

// Hop is one load: the members walked from a base pointer up to the value
// read at Offset bytes from it.
type Hop struct {
	// Base is the struct or union the hop starts from.
	Base cbtf.Type
	// Path is the members walked, as written (anonymous members omitted,
	// array elements as name[i]).
	Path []string
	// Offset is the byte offset of the value from the base pointer.
	Offset uint32
	// Type is the value's declared type.
	Type cbtf.Type
}

// Member is a resolved member path. Every hop but the last reads a pointer
// through which the next hop starts; the last reads the value itself.
type Member struct {
	Hops []Hop
	// BitOffset and BitSize locate a bitfield inside the bytes at the last
	// hop's Offset (BitOffset counts from that byte, little-endian); both
	// are zero for an ordinary member.
	BitOffset, BitSize uint32
}

// Last is the hop that reads the value.
func (m *Member) Last() Hop { return m.Hops[len(m.Hops)-1] }

// IsBitfield reports whether the value is a bitfield.
func (m *Member) IsBitfield() bool { return m.BitSize > 0 }

// LookupComposite finds the struct or union called name (a typedef of one is
// followed).
func LookupComposite(spec Types, name string) (cbtf.Type, error) {
	types, err := spec.AnyTypesByName(name)
	if err != nil && !errors.Is(err, cbtf.ErrNotFound) {
		return nil, err
	}
	var found []cbtf.Type
	var cycle error
	for _, t := range types {
		u, err := underlying(t)
		if err != nil {
			cycle = err
			continue
		}
		if isComposite(u) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		if cycle != nil {
			return nil, fmt.Errorf("struct %s: %w", name, cycle)
		}
		near := NearNames(spec, name, 3, func(t cbtf.Type) bool {
			_, s := t.(*cbtf.Struct)
			_, u := t.(*cbtf.Union)
			return s || u
		})
		if len(near) > 0 {
			return nil, fmt.Errorf("struct %s: %w (did you mean %s?)", name, ErrNotFound, strings.Join(near, ", "))
		}
		return nil, fmt.Errorf("struct %s: %w", name, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("struct %s: %w (%d definitions)", name, ErrAmbiguous, len(found))
}

// ResolveMember resolves path ("__sk_common.skc_daddr") from the struct or
// union called typeName in spec.
func ResolveMember(spec Types, typeName, path string) (*Member, error) {
	t, err := LookupComposite(spec, typeName)
	if err != nil {
		return nil, err
	}
	return WalkMember(t, path)
}

// WalkMember resolves path from the struct or union t. Members are separated
// by dots; array elements are written name[i]; walking on from a pointer
// member starts a new hop. Members of anonymous structs and unions are found
// as if they belonged to the enclosing type, as in C.
func WalkMember(t cbtf.Type, path string) (*Member, error) {
	if path == "" {
		return nil, errors.New("empty member path")
	}
	m := &Member{}
	hop := Hop{Base: t}
	cur, err := underlying(t)
	if err != nil {
		return nil, err
	}
	var bitOff uint32
	elems := strings.Split(path, ".")
	for i, elem := range elems {
		name, index, hasIndex, err := parseElem(elem)
		if err != nil {
			return nil, err
		}
		if p, ok := cur.(*cbtf.Pointer); ok {
			// Walking on from a pointer: the previous value is loaded and
			// becomes the next hop's base.
			hop.Type = p
			m.Hops = append(m.Hops, hop)
			target, err := underlying(p.Target)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", strings.Join(elems[:i], "."), err)
			}
			hop = Hop{Base: target}
			cur = target
		}
		if !isComposite(cur) {
			return nil, fmt.Errorf("%s: %s is %s, not a struct or union", strings.Join(elems[:i+1], "."), strings.Join(elems[:i], "."), CType(cur))
		}
		mem, off, found := findMember(cur, name)
		if !found {
			return nil, unknownMember(cur, name)
		}
		hop.Path = append(hop.Path, elem)
		hop.Offset += off / 8
		bitOff = off % 8
		m.BitSize = uint32(mem.BitfieldSize)
		typ := mem.Type
		if hasIndex {
			u, err := underlying(typ)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", elem, err)
			}
			arr, ok := u.(*cbtf.Array)
			if !ok {
				return nil, fmt.Errorf("%s: %s is not an array", elem, CType(typ))
			}
			if index >= arr.Nelems {
				return nil, fmt.Errorf("%s: index out of range [0, %d)", elem, arr.Nelems)
			}
			size, err := cbtf.Sizeof(arr.Type)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", elem, err)
			}
			off := uint64(hop.Offset) + uint64(index)*uint64(size)
			if off > math.MaxUint32 {
				return nil, fmt.Errorf("%s: offset %d does not fit 32 bits", elem, off)
			}
			hop.Offset = uint32(off)
			typ = arr.Type
		}
		hop.Type = typ
		if cur, err = underlying(typ); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(elems[:i+1], "."), err)
		}
	}
	if m.BitSize > 0 {
		m.BitOffset = bitOff
	}
	m.Hops = append(m.Hops, hop)
	return m, nil
}

func isComposite(t cbtf.Type) bool {
	switch t.(type) {
	case *cbtf.Struct, *cbtf.Union:
		return true
	}
	return false
}

func members(t cbtf.Type) []cbtf.Member {
	switch c := t.(type) {
	case *cbtf.Struct:
		return c.Members
	case *cbtf.Union:
		return c.Members
	}
	return nil
}

// findMember finds name in t or, recursively, in its anonymous members, and
// returns its offset in bits from the start of t. A type is searched once:
// an anonymous member that contains its container, or a type reached again
// through other anonymous members, is not searched again.
func findMember(t cbtf.Type, name string) (cbtf.Member, uint32, bool) {
	return findIn(t, name, map[cbtf.Type]bool{})
}

func findIn(t cbtf.Type, name string, searched map[cbtf.Type]bool) (cbtf.Member, uint32, bool) {
	if searched[t] {
		return cbtf.Member{}, 0, false
	}
	searched[t] = true
	for _, m := range members(t) {
		if m.Name == name {
			return m, uint32(m.Offset), true
		}
		if m.Name == "" {
			u, err := underlying(m.Type)
			if err != nil {
				continue
			}
			if inner, off, ok := findIn(u, name, searched); ok {
				return inner, uint32(m.Offset) + off, true
			}
		}
	}
	return cbtf.Member{}, 0, false
}

// VisibleMembers lists the members reachable by name from t, with anonymous
// members flattened as C does, in declaration order. Offsets are in bits from
// the start of t.
//
// The answer is finite and fit to name things after on any BTF: a name
// reachable twice (which C forbids) is listed once, where WalkMember finds
// it; an anonymous member that contains its container (which no compiler
// emits, and [Check] refuses) is left out, and so are members whose names
// are not C identifiers (no code can name them); the walk stops after
// looking at MaxMembers members.
func VisibleMembers(t cbtf.Type) []cbtf.Member {
	budget := MaxMembers
	return visible(t, &budget, nil, map[string]bool{})
}

// visible lists t's visible members, spending one of budget per member it
// looks at; path holds the containers being flattened, seen the names
// listed so far.
func visible(t cbtf.Type, budget *int, path []cbtf.Type, seen map[string]bool) []cbtf.Member {
	u, err := underlying(t)
	if err != nil {
		return nil
	}
	for _, p := range path {
		if p == u {
			return nil
		}
	}
	path = append(path, u)
	var out []cbtf.Member
	for _, m := range members(u) {
		if *budget <= 0 {
			break
		}
		*budget--
		if m.Name != "" {
			if IsCIdent(m.Name) && !seen[m.Name] {
				seen[m.Name] = true
				out = append(out, m)
			}
			continue
		}
		for _, inner := range visible(m.Type, budget, path, seen) {
			inner.Offset += m.Offset
			out = append(out, inner)
		}
	}
	return out
}

func unknownMember(t cbtf.Type, name string) error {
	// Candidates are the visible members and, one level down, the members of
	// named struct or union members (sock's sk_prot is __sk_common.skc_prot).
	// One budget bounds the whole search.
	budget := MaxMembers
	full := map[string]string{}
	var leaves []string
	add := func(leaf, path string) {
		if _, ok := full[leaf]; !ok {
			full[leaf] = path
			leaves = append(leaves, leaf)
		}
	}
	direct := visible(t, &budget, nil, map[string]bool{})
	for _, m := range direct {
		add(m.Name, m.Name)
	}
	for _, m := range direct {
		if u, err := underlying(m.Type); err == nil && isComposite(u) {
			for _, inner := range visible(u, &budget, nil, map[string]bool{}) {
				add(inner.Name, m.Name+"."+inner.Name)
			}
		}
	}
	near := Nearest(name, leaves, 3)
	if len(near) == 0 {
		return fmt.Errorf("%s has %w %q", CType(t), ErrUnknownMember, name)
	}
	for i, n := range near {
		near[i] = full[n]
	}
	return fmt.Errorf("%s has %w %q (did you mean %s?)", CType(t), ErrUnknownMember, name, strings.Join(near, ", "))
}

func parseElem(elem string) (name string, index uint32, hasIndex bool, err error) {
	open := strings.IndexByte(elem, '[')
	if open < 0 {
		if elem == "" {
			return "", 0, false, errors.New("empty member name in path")
		}
		if !IsCIdent(elem) {
			return "", 0, false, fmt.Errorf("malformed path element %q (want name or name[i])", elem)
		}
		return elem, 0, false, nil
	}
	if !strings.HasSuffix(elem, "]") || !IsCIdent(elem[:open]) {
		return "", 0, false, fmt.Errorf("malformed path element %q (want name or name[i])", elem)
	}
	n, err := strconv.ParseUint(elem[open+1:len(elem)-1], 10, 32)
	if err != nil {
		return "", 0, false, fmt.Errorf("malformed index in %q: %w", elem, err)
	}
	return elem[:open], uint32(n), true, nil
}
