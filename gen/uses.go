package gen

import (
	"go/ast"
	"go/types"
	"slices"
	"sort"
)

// Use is a member a probe reads: the named struct or union its path starts
// from, the path, and the size the program loads (0 for a member held by
// value).
type Use struct {
	Base string `json:"base"`
	Path string `json:"path"`
	Size int    `json:"size,omitempty"`
	// Pos is the stub's first read of it.
	Pos Pos `json:"pos"`
}

// attributeUses records, for each probe, the arguments and members its stub
// reads, through the functions it calls: what `fentrygen check` checks on
// other kernels.
func (b *builder) attributeUses(info *types.Info) {
	decls := map[types.Object]*ast.FuncDecl{}
	for _, f := range b.in.Files {
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				decls[info.Defs[fn.Name]] = fn
			}
		}
	}
	for _, p := range b.model.Probes {
		args := map[string]*Arg{}
		for _, a := range append(append([]*Arg{}, p.Args...), p.Ret, p.Task) {
			if a != nil {
				args[a.GoName] = a
			}
		}
		usedArgs, uses := map[string]bool{}, map[Use]Pos{}
		seen := map[*ast.FuncDecl]bool{}
		var walk func(fn *ast.FuncDecl)
		walk = func(fn *ast.FuncDecl) {
			if fn == nil || seen[fn] {
				return
			}
			seen[fn] = true
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if _, ok := info.Selections[n]; !ok {
						return true
					}
					if a, ok := args[n.Sel.Name]; ok && b.isContext(info.Types[n.X].Type, p.contexts()...) {
						usedArgs[a.CName] = true
					}
					if acc := b.accessorOf(info.Types[n.X].Type); acc != nil {
						for _, m := range b.acc.memberList(acc) {
							u := Use{Base: acc.base, Path: joinPath(acc.path, m.CName), Size: memberSize(m)}
							if _, seen := uses[u]; !seen && m.GoName == n.Sel.Name && acc.base != "" {
								uses[u] = Pos{b.pos(n.Sel.Pos())}
							}
						}
					}
				case *ast.Ident:
					walk(decls[info.Uses[n]])
				}
				return true
			})
		}
		for _, f := range b.in.Files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == p.Stub && fn.Recv == nil {
					walk(fn)
				}
			}
		}
		p.ArgsUsed = sortedKeys(usedArgs)
		p.Uses = nil
		for u, pos := range uses {
			u.Pos = pos
			p.Uses = append(p.Uses, u)
		}
		sort.Slice(p.Uses, func(i, j int) bool {
			if p.Uses[i].Base != p.Uses[j].Base {
				return p.Uses[i].Base < p.Uses[j].Base
			}
			return p.Uses[i].Path < p.Uses[j].Path
		})
	}
}

// isContext reports whether t is (a pointer to) one of the context types
// called names of the checked package.
func (b *builder) isContext(t types.Type, names ...string) bool {
	if ptr, ok := t.(*types.Pointer); ok {
		t = ptr.Elem()
	}
	named, ok := types.Unalias(t).(*types.Named)
	return ok && slices.Contains(names, named.Obj().Name()) && named.Obj().Pkg() != nil && named.Obj().Pkg().Path() == b.in.PkgPath
}

// contexts are the context types of a probe: one, or an fsession's three.
func (p *Probe) contexts() []string {
	if p.Session == nil {
		return []string{p.Context}
	}
	return []string{p.Context, p.Session.Entry, p.Session.Exit}
}

// memberSize is the bytes a member's read loads: 8 for pointers, the
// integer's size, 0 for members held by value.
func memberSize(m *Member) int {
	switch m.Kind {
	case ValuePtr:
		return 8
	case ValueScalar, ValueArray:
		return map[string]int{"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4, "uint64": 8, "int64": 8}[m.GoType]
	}
	return 0
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
