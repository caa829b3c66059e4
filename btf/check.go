package btf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// ErrCycle is wrapped by errors for a type that contains or refers to
// itself in a way C cannot express: a struct holding itself by value
// (directly, through anonymous members, arrays, typedefs or qualifiers), or
// a loop of typedefs, qualifiers or pointers that passes through no struct
// or union.
var ErrCycle = errors.New("type refers to itself")

// MaxMembers bounds the members a struct or union may have, counting those
// of its anonymous members and the anonymous members themselves. The
// largest kernel structs have a few hundred; the bound keeps a BTF whose
// anonymous members share types in a deep lattice (2 members at each of 40
// levels are 2^40 paths) from taking forever.
const MaxMembers = 1 << 16

// Check reports the first thing in spec that fentrygen cannot work with: a
// type that does not decode, a type that contains itself or a loop that
// passes through no struct or union (both wrap ErrCycle), a type that
// refers to no type, a name that is not a C identifier where the kernel
// requires one (wraps ErrBadName), or a struct or union with more than
// MaxMembers members. It decodes every type, so it costs about as much as
// reading the spec (a fifth of a second for a whole kernel's BTF).
//
// [LoadFile], [LoadBytes] and [Embedded] check what they load. The queries
// of this package are safe on specs that fail it, but answer less.
func Check(spec *cbtf.Spec) error {
	var all []cbtf.Type
	for t, err := range spec.All() {
		if err != nil {
			return err
		}
		all = append(all, t)
	}
	return checkTypes(all, func(t cbtf.Type) string {
		if id, err := spec.TypeID(t); err == nil {
			return " [" + strconv.FormatUint(uint64(id), 10) + "]"
		}
		return ""
	})
}

// appendEdges appends the types t refers to, in order, and whether each is
// a pointer's target: the only reference that does not make the target
// part of t.
func appendEdges(buf []edge, t cbtf.Type) []edge {
	switch v := t.(type) {
	case *cbtf.Pointer:
		return append(buf, edge{v.Target, true})
	case *cbtf.Array:
		return append(buf, edge{v.Type, false}, edge{v.Index, false})
	case *cbtf.Struct:
		for _, m := range v.Members {
			buf = append(buf, edge{m.Type, false})
		}
	case *cbtf.Union:
		for _, m := range v.Members {
			buf = append(buf, edge{m.Type, false})
		}
	case *cbtf.Typedef:
		return append(buf, edge{v.Type, false})
	case *cbtf.Const:
		return append(buf, edge{v.Type, false})
	case *cbtf.Volatile:
		return append(buf, edge{v.Type, false})
	case *cbtf.Restrict:
		return append(buf, edge{v.Type, false})
	case *cbtf.TypeTag:
		return append(buf, edge{v.Type, false})
	case *cbtf.Func:
		return append(buf, edge{v.Type, false})
	case *cbtf.Var:
		return append(buf, edge{v.Type, false})
	case *cbtf.FuncProto:
		buf = append(buf, edge{v.Return, false})
		for _, p := range v.Params {
			buf = append(buf, edge{p.Type, false})
		}
	case *cbtf.Datasec:
		for _, vs := range v.Vars {
			buf = append(buf, edge{vs.Type, false})
		}
	}
	return buf
}

type edge struct {
	to      cbtf.Type
	pointer bool
}

// edgeLabel names t's i-th reference (as appendEdges orders them) for
// messages: "member skc_daddr", "parameter #0", "" for the only one.
func edgeLabel(t cbtf.Type, i int) string {
	switch v := t.(type) {
	case *cbtf.Array:
		return []string{" element", " index"}[i]
	case *cbtf.Struct:
		return " member " + paramName(i, v.Members[i].Name)
	case *cbtf.Union:
		return " member " + paramName(i, v.Members[i].Name)
	case *cbtf.FuncProto:
		if i == 0 {
			return " return"
		}
		return " parameter " + paramName(i-1, v.Params[i-1].Name)
	}
	return ""
}

// paramName is name, quoted when odd, or #i for an anonymous one.
func paramName(i int, name string) string {
	if name == "" {
		return "#" + strconv.Itoa(i)
	}
	return quoteName(name)
}

// graph is the types reachable from some roots, by dense index, with their
// references as a compressed adjacency list.
type graph struct {
	types []cbtf.Type
	// Edges of types[i] are to[start[i]:start[i+1]], pointer alike.
	start   []int32
	to      []int32
	pointer []bool
}

// checkTypes checks roots and every type they reach; id renders a type's
// ID for messages ("" when unknown).
func checkTypes(roots []cbtf.Type, id func(cbtf.Type) string) error {
	c := &checker{id: id}
	g := &graph{types: make([]cbtf.Type, 0, len(roots))}
	index := make(map[cbtf.Type]int32, len(roots))
	add := func(t cbtf.Type) int32 {
		if i, ok := index[t]; ok {
			return i
		}
		i := int32(len(g.types))
		index[t] = i
		g.types = append(g.types, t)
		return i
	}
	for _, r := range roots {
		if r == nil {
			return errors.New("missing type")
		}
		add(r)
	}
	// Breadth first: deterministic, roots in their order first.
	var buf []edge
	for i := 0; i < len(g.types); i++ {
		t := g.types[i]
		if err := c.names(t); err != nil {
			return err
		}
		g.start = append(g.start, int32(len(g.to)))
		buf = appendEdges(buf[:0], t)
		for j, e := range buf {
			if e.to == nil {
				return fmt.Errorf("%s%s: refers to no type", c.node(t), edgeLabel(t, j))
			}
			g.to = append(g.to, add(e.to))
			g.pointer = append(g.pointer, e.pointer)
		}
	}
	g.start = append(g.start, int32(len(g.to)))
	// A type may not contain itself: no loop of value references.
	if err := c.loops(g, false, "contains itself"); err != nil {
		return err
	}
	// Every loop passes through a struct or union (list_head's next does):
	// no loop among the other types.
	if err := c.loops(g, true, "refers to itself through no struct or union"); err != nil {
		return err
	}
	// The members reachable by name, anonymous ones flattened, are bounded.
	// Name a named one if there is one.
	count := make(map[cbtf.Type]int)
	var anonymous cbtf.Type
	for _, t := range g.types {
		if isComposite(t) && c.members(t, count) > MaxMembers {
			if t.TypeName() != "" {
				return c.tooMany(t)
			}
			if anonymous == nil {
				anonymous = t
			}
		}
	}
	if anonymous != nil {
		return c.tooMany(anonymous)
	}
	return nil
}

func (c *checker) tooMany(t cbtf.Type) error {
	return fmt.Errorf("%s has more than %d members, counting those of its anonymous members", c.node(t), MaxMembers)
}

type checker struct {
	id func(cbtf.Type) string
}

// node names t for messages: "struct sock [12]", "pointer [7]".
func (c *checker) node(t cbtf.Type) string {
	return kindWord(t) + c.id(t)
}

// kindWord is what t is, with its name when it has one: "struct sock",
// "anonymous union", "pointer".
func kindWord(t cbtf.Type) string {
	kind := kindOf(t)
	switch t.(type) {
	case *cbtf.Pointer, *cbtf.Array, *cbtf.Const, *cbtf.Volatile, *cbtf.Restrict, *cbtf.TypeTag, *cbtf.FuncProto, *cbtf.Void:
		return kind
	}
	if name := t.TypeName(); name != "" {
		return kind + " " + quoteName(name)
	}
	return "anonymous " + kind
}

// kindOf is what t is: "struct", "pointer", "function prototype".
func kindOf(t cbtf.Type) string {
	switch t.(type) {
	case *cbtf.Struct:
		return "struct"
	case *cbtf.Union:
		return "union"
	case *cbtf.Enum:
		return "enum"
	case *cbtf.Typedef:
		return "typedef"
	case *cbtf.Fwd:
		return "forward declaration"
	case *cbtf.Func:
		return "function"
	case *cbtf.Var:
		return "variable"
	case *cbtf.Datasec:
		return "section"
	case *cbtf.Int:
		return "integer type"
	case *cbtf.Float:
		return "float type"
	case *cbtf.Pointer:
		return "pointer"
	case *cbtf.Array:
		return "array"
	case *cbtf.Const:
		return "const"
	case *cbtf.Volatile:
		return "volatile"
	case *cbtf.Restrict:
		return "restrict"
	case *cbtf.TypeTag:
		return "type tag"
	case *cbtf.FuncProto:
		return "function prototype"
	case *cbtf.Void:
		return "void"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", t), "*btf.")
}

// names checks the names the kernel requires to be C identifiers.
func (c *checker) names(t cbtf.Type) error {
	bad := func(what, name string) error {
		if name == "" {
			return fmt.Errorf("%s: no name", what)
		}
		return fmt.Errorf("%s: name %q is %w", what, name, ErrBadName)
	}
	optional := func(name string) bool { return name == "" || IsCIdent(name) }
	switch v := t.(type) {
	case *cbtf.Struct, *cbtf.Union, *cbtf.Enum:
		if !optional(v.TypeName()) {
			return bad(kindOf(t)+c.id(t), v.TypeName())
		}
		for i, m := range members(t) {
			if !optional(m.Name) {
				return bad(fmt.Sprintf("%s member %d", c.node(t), i), m.Name)
			}
		}
	case *cbtf.Typedef, *cbtf.Fwd, *cbtf.Func:
		if !IsCIdent(v.TypeName()) {
			return bad(kindOf(t)+c.id(t), v.TypeName())
		}
	case *cbtf.FuncProto:
		for i, p := range v.Params {
			if !optional(p.Name) {
				return bad(fmt.Sprintf("%s parameter %d", c.node(t), i), p.Name)
			}
		}
	}
	return nil
}

// loops finds a loop in g, depth first without recursion: of value
// references only, or (pointers) of any references among types other than
// structs and unions. It reports the first loop met, from where it closes:
// "struct a [3] contains itself: struct a [3] member b -> struct a [3]".
func (c *checker) loops(g *graph, pointers bool, what string) error {
	const (
		white = iota
		grey  // on the current path
		black // done: no loop through it
	)
	keep := func(i int32) bool { return !pointers || !isComposite(g.types[i]) }
	color := make([]uint8, len(g.types))
	type frame struct{ node, next int32 }
	var stack []frame
	for root := range int32(len(g.types)) {
		if color[root] != white || !keep(root) {
			continue
		}
		stack = append(stack[:0], frame{root, g.start[root]})
		color[root] = grey
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == g.start[top.node+1] {
				color[top.node] = black
				stack = stack[:len(stack)-1]
				continue
			}
			e := top.next
			top.next++
			to := g.to[e]
			if (g.pointer[e] && !pointers) || !keep(to) {
				continue
			}
			switch color[to] {
			case grey:
				first := 0
				for stack[first].node != to {
					first++
				}
				loop := stack[first:]
				// Start from the first struct or union in the loop, if any.
				for i, f := range loop {
					if isComposite(g.types[f.node]) {
						loop = append(loop[i:len(loop):len(loop)], loop[:i]...)
						break
					}
				}
				var path []string
				for _, f := range loop {
					t := g.types[f.node]
					path = append(path, c.node(t)+edgeLabel(t, int(f.next-1-g.start[f.node])))
				}
				start := g.types[loop[0].node]
				path = append(path, c.node(start))
				return fmt.Errorf("%s %s: %s: %w", c.node(start), what, strings.Join(path, " -> "), ErrCycle)
			case white:
				color[to] = grey
				stack = append(stack, frame{to, g.start[to]})
			}
		}
	}
	return nil
}

// members counts the members of composite t as VisibleMembers walks them:
// every member, and those of anonymous members again. Call it only once no
// type contains itself.
func (c *checker) members(t cbtf.Type, count map[cbtf.Type]int) int {
	if n, ok := count[t]; ok {
		return n
	}
	n := 0
	for _, m := range members(t) {
		n++
		if m.Name == "" {
			if u, err := underlying(m.Type); err == nil && isComposite(u) {
				n += c.members(u, count)
			}
		}
		if n > MaxMembers {
			break
		}
	}
	count[t] = n
	return n
}
