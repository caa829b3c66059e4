package gen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// maxRounds bounds the type-checking rounds of settle: each round gives
// members to at least one more struct a stub reaches.
const maxRounds = 64

// settle finds out which accessor members the stubs use by type-checking
// the package with generated code: every struct reached so far has all its
// members; a selector on a struct that has none yet gives it its members
// for the next round; selectors that resolve mark their members used. When
// nothing changes, the accessors keep only what is used (and what depth=
// keeps), and the package is checked once more with that final file: its
// errors are the package's errors. failed (non-nil when there were errors
// before) lists generated names whose absence is already explained.
func (b *builder) settle(failed map[string]bool) {
	known := len(b.acc.order)
	var misspelled map[token.Pos]string
	for round := 0; ; round++ {
		if round == maxRounds {
			b.diags.errorf(token.Position{}, "accessors did not settle after %d rounds of type checking", maxRounds)
			return
		}
		b.model.Accessors = b.acc.model(nil, false)
		_, info, _, ok := b.checkWith(false)
		if !ok {
			return
		}
		var changed bool
		changed, misspelled = b.selections(info)
		if !changed {
			break
		}
	}
	if failed == nil {
		b.checkAccessorNames(known)
		if b.diags.list.HasErrors() {
			return
		}
	}
	b.model.Accessors = b.acc.model(b.roots(), true)
	if failed == nil {
		b.pruneViews()
	}
	_, info, errs, ok := b.checkWith(true)
	if !ok {
		return
	}
	b.checkReturns(info)
	if failed == nil {
		b.attributeUses(info)
	}
	for _, e := range errs {
		if name, ok := strings.CutPrefix(e.Msg, "undefined: "); ok && failed[name] {
			continue
		}
		if msg, ok := misspelled[e.Pos]; ok {
			b.diags.errorf(b.pos(e.Pos), "%s", msg)
			delete(misspelled, e.Pos)
			continue
		}
		pos := b.pos(e.Pos)
		if hint := b.sessionHint(e.Msg); hint != "" {
			b.diags.errorf(pos, "%s: %s", e.Msg, hint)
			continue
		}
		if filepath.Clean(pos.Filename) == filepath.Clean(b.in.Output) {
			if failed == nil {
				b.diags.errorf(pos, "internal error: the generated code does not compile: %s", e.Msg)
			}
			continue
		}
		b.diags.errorf(pos, "%s", e.Msg)
	}
}

// roots are the accessors the context types name, at their arguments.
func (b *builder) roots() []root {
	var out []root
	for _, p := range b.model.Probes {
		for _, a := range append(append([]*Arg{}, p.Args...), p.Ret, p.Task) {
			if a != nil && a.Kind == ValuePtr {
				out = append(out, root{a.GoType, a.Pos.Position})
			}
		}
	}
	return out
}

// checkWith emits the model, and type-checks the package's files with it.
// ok is false when the model cannot be emitted (reported). The final check
// formats the code as it is written, so that positions in it are right.
func (b *builder) checkWith(final bool) (*types.Package, *types.Info, []types.Error, bool) {
	code, err := render(b.model, final)
	if err != nil {
		b.diags.errorf(token.Position{}, "internal error: %v", err)
		return nil, nil, nil, false
	}
	file, err := parser.ParseFile(b.in.Fset, b.in.Output, code, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		b.diags.errorf(token.Position{}, "internal error: the generated code does not parse: %v", err)
		return nil, nil, nil, false
	}
	pkg, info, errs := b.in.check(append(append([]*ast.File{}, b.in.Files...), file))
	return pkg, info, errs, true
}

// selections walks the package's selectors on accessor values: resolved
// ones mark members used, unresolved ones on an accessor without members
// give it its members (changed), and unresolved ones on an accessor with
// all its members are misspellings, explained with a near miss.
func (b *builder) selections(info *types.Info) (changed bool, misspelled map[token.Pos]string) {
	misspelled = map[token.Pos]string{}
	for _, f := range b.in.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if v := b.viewOfType(info.Types[sel.X].Type); v != nil {
				b.viewUsed[v.GoName+"."+sel.Sel.Name] = true
				return true
			}
			acc := b.accessorOf(info.Types[sel.X].Type)
			if acc == nil {
				return true
			}
			name := sel.Sel.Name
			if _, ok := info.Selections[sel]; ok {
				if _, ok := acc.used[name]; !ok {
					acc.used[name] = b.pos(sel.Sel.Pos())
				}
				return true
			}
			if !acc.full {
				acc.full = true
				changed = true
				return true
			}
			misspelled[sel.Sel.Pos()] = b.misspelling(acc, name)
			return true
		})
	}
	return changed, misspelled
}

// viewOfType is the generated view t is, or nil.
func (b *builder) viewOfType(t types.Type) *View {
	named, ok := types.Unalias(t).(*types.Named)
	if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != b.in.PkgPath {
		return nil
	}
	for _, v := range b.model.Views {
		if v.GoName == named.Obj().Name() {
			return v
		}
	}
	return nil
}

// pruneViews keeps the view methods the package calls: a field's getter,
// setter or adder that nothing calls is not generated.
func (b *builder) pruneViews() {
	for _, v := range b.model.Views {
		var kept []*ViewField
		for _, f := range v.Fields {
			for _, m := range []*string{&f.Get, &f.Set, &f.Add, &f.FromString, &f.FromKernel, &f.FromCurrent} {
				if *m != "" && !b.viewUsed[v.GoName+"."+*m] {
					*m = ""
				}
			}
			if f.Get+f.Set+f.Add+f.FromString+f.FromKernel+f.FromCurrent != "" {
				kept = append(kept, f)
			}
		}
		v.Fields = kept
	}
}

// accessorOf is the accessor t is (or points to), or nil.
func (b *builder) accessorOf(t types.Type) *accessor {
	if t == nil {
		return nil
	}
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	named, ok := types.Unalias(t).(*types.Named)
	if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != b.in.PkgPath {
		return nil
	}
	acc := b.acc.byName(named.Obj().Name())
	if acc == nil || b.in.Types.Scope().Lookup(named.Obj().Name()) != nil {
		// A user type of that name is not an accessor (and clashes are
		// reported elsewhere).
		return nil
	}
	return acc
}

// misspelling explains a selector that names no member of acc.
func (b *builder) misspelling(acc *accessor, name string) string {
	var goNames []string
	byC := map[string]string{}
	for _, m := range b.acc.memberList(acc) {
		goNames = append(goNames, m.GoName)
		byC[m.CName] = m.GoName
	}
	msg := fmt.Sprintf("%s (%s) has no member %s", acc.goName, acc.cName, name)
	if g, ok := byC[name]; ok {
		return msg + fmt.Sprintf(" (did you mean %s?)", g)
	}
	if near := fbtf.Nearest(name, goNames, 3); len(near) > 0 {
		return msg + fmt.Sprintf(" (did you mean %s?)", strings.Join(near, ", "))
	}
	return msg
}
