package gen

import (
	"go/ast"
	"go/types"
	"strings"
)

// mapArity is how many type arguments each map kind takes.
var mapArity = map[MapKind]int{
	MapHash: 2, MapLRUHash: 2, MapPerCPUHash: 2,
	MapArray: 1, MapPerCPUArray: 1, MapGlobal: 1,
	MapLog2Hist: 0, MapLinearHist: 0, MapLog2HistBy: 1, MapLinearHistBy: 1,
	MapStackTrace: 0,
}

// mapDecl resolves a package-level map variable: its kind and element types
// from the declaration, its shape from the annotation.
func (b *builder) mapDecl(fm foundMap) {
	pos := b.pos(fm.name.Pos())
	typeName, ok := b.runtimeType(fm.spec.Type)
	if !ok {
		b.diags.errorf(pos, "%s is annotated %s but is not one of the runtime's map types (%s)", fm.name.Name, mapPrefix, mapKindList())
		return
	}
	kind := mapKinds[typeName]
	m := &Map{Var: fm.name.Name, Field: exported(fm.name.Name), Kind: kind, Pos: Pos{pos}}
	var args []ast.Expr
	switch e := fm.spec.Type.(type) {
	case *ast.IndexExpr:
		args = []ast.Expr{e.Index}
	case *ast.IndexListExpr:
		args = e.Indices
	}
	if len(args) != mapArity[kind] {
		b.diags.errorf(pos, "runtime.%s takes %d type arguments, not %d", typeName, mapArity[kind], len(args))
		return
	}
	var elems []*ElemType
	for _, arg := range args {
		e := b.elemType(arg)
		if e == nil {
			return
		}
		elems = append(elems, e)
	}
	switch {
	case len(elems) == 2:
		m.Key, m.Value = elems[0], elems[1]
	case len(elems) == 1 && kind.hist():
		m.Key = elems[0]
	case len(elems) == 1:
		m.Value = elems[0]
	}
	ann := fm.ann
	if ann == nil {
		ann = &mapAnnotation{at: nil}
	}
	allowed := map[string]bool{"max": !kind.hist() && kind != MapGlobal || kind.keyed(), "slots": kind.hist(), "base": kind == MapLinearHist || kind == MapLinearHistBy, "step": kind == MapLinearHist || kind == MapLinearHistBy}
	for key, at := range ann.at {
		if !allowed[key] {
			b.diags.errorf(at, "%s= does not apply to runtime.%s", key, typeName)
			return
		}
	}
	m.MaxEntries, m.Slots, m.Base, m.Step = ann.MaxEntries, ann.Slots, ann.Base, ann.Step
	switch {
	case (kind == MapArray || kind == MapPerCPUArray) && m.MaxEntries == 0:
		b.diags.errorf(pos, "array %s needs its length: %s max=N", m.Var, mapPrefix)
		return
	case kind.keyed() && m.MaxEntries == 0:
		m.MaxEntries = DefaultMaxEntries
	}
	b.model.Maps = append(b.model.Maps, m)
}

// elemType resolves a map's type argument: runtime.U8 to S64 (a Num of a
// Go integer type), or XView, the view of the package's struct X.
func (b *builder) elemType(arg ast.Expr) *ElemType {
	pos := b.pos(arg.Pos())
	if t := b.in.Info.Types[arg].Type; t != nil {
		if named, ok := types.Unalias(t).(*types.Named); ok && named.Obj().Pkg() != nil &&
			named.Obj().Pkg().Path() == rtPath && named.Obj().Name() == "Num" && named.TypeArgs().Len() == 1 {
			if basic, ok := named.TypeArgs().At(0).(*types.Basic); ok {
				if goType, ok := sizedInt(basic); ok {
					return &ElemType{Go: goType}
				}
			}
		}
	}
	id, ok := arg.(*ast.Ident)
	if !ok || !strings.HasSuffix(id.Name, "View") || id.Name == "View" {
		b.diags.errorf(pos, "map element %s: want runtime.U8 to runtime.S64, or XView for a struct X of this package", types.ExprString(arg))
		return nil
	}
	name := strings.TrimSuffix(id.Name, "View")
	if v := b.viewOf(name, pos); v != nil {
		return &ElemType{Go: name, View: v.GoName}
	}
	return nil
}
