package gen

import (
	"go/ast"
	"go/build/constraint"
	"go/token"
	"go/types"
	"sort"
	"strings"
)

// found is what the scan of a package's files turned up: annotated stubs,
// event types, map variables, and the build constraints of their files.
type found struct {
	probes []foundProbe
	// stubs are all functions with annotations, good or bad.
	stubs  []*ast.FuncDecl
	events []foundEvent
	maps   []foundMap
	// constraints maps each file with declarations to its //go:build
	// expression ("" when none).
	constraints map[string]string
}

type foundProbe struct {
	fn  *ast.FuncDecl
	ann *annotation
}

type foundEvent struct {
	spec *ast.TypeSpec
	ann  *eventAnnotation
}

type foundMap struct {
	name *ast.Ident
	spec *ast.ValueSpec
	ann  *mapAnnotation // nil: no annotation, defaults apply
}

// scan reads every file's comments for annotations and directives that
// look like misspelled ones, and finds the map variables.
func (b *builder) scan() *found {
	f := &found{constraints: map[string]string{}}
	for _, file := range b.in.Files {
		name := b.pos(file.Pos()).Filename
		funcDocs := map[*ast.CommentGroup]*ast.FuncDecl{}
		typeDocs := map[*ast.CommentGroup]*ast.TypeSpec{}
		varDocs := map[*ast.CommentGroup]*ast.ValueSpec{}
		for _, decl := range file.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Doc != nil {
					funcDocs[d.Doc] = d
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Doc != nil {
							typeDocs[s.Doc] = s
						}
						if d.Doc != nil && len(d.Specs) == 1 {
							typeDocs[d.Doc] = s
						}
					case *ast.ValueSpec:
						if d.Tok != token.VAR {
							continue
						}
						if s.Doc != nil {
							varDocs[s.Doc] = s
						}
						if d.Doc != nil && len(d.Specs) == 1 {
							varDocs[d.Doc] = s
						}
					}
				}
			}
		}
		declared := false
		annotatedMaps := map[*ast.ValueSpec]*mapAnnotation{}
		for _, cg := range file.Comments {
			fn := funcDocs[cg]
			var anns []*annotation
			for _, c := range cg.List {
				pos := b.pos(c.Slash)
				switch {
				case isAnnotation(c.Text):
					if fn == nil {
						b.diags.errorf(pos, "%s is not on a function: annotate a func stub taking the generated context type", strings.SplitN(c.Text, " ", 2)[0])
						continue
					}
					f.stubs = append(f.stubs, fn)
					a, err := parseAnnotation(pos, c.Text)
					if err != nil {
						b.diags.add(err)
						continue
					}
					anns = append(anns, a)
				case strings.HasPrefix(c.Text, eventPrefix) && nearMiss(c.Text) == "":
					ts := typeDocs[cg]
					if ts == nil {
						b.diags.errorf(pos, "%s is not on a type declaration", eventPrefix)
						continue
					}
					e, err := parseEvent(pos, c.Text)
					if err != nil {
						b.diags.add(err)
						continue
					}
					f.events = append(f.events, foundEvent{spec: ts, ann: e})
					declared = true
				case strings.HasPrefix(c.Text, mapPrefix) && nearMiss(c.Text) == "":
					vs := varDocs[cg]
					if vs == nil {
						b.diags.errorf(pos, "%s is not on a package-level var declaration", mapPrefix)
						continue
					}
					m, err := parseMap(pos, c.Text)
					if err != nil {
						b.diags.add(err)
						continue
					}
					annotatedMaps[vs] = m
				default:
					if msg := nearMiss(c.Text); msg != "" {
						b.diags.warnf(pos, "%s", msg)
					}
				}
			}
			switch {
			case len(anns) > 1:
				b.diags.errorf(anns[1].Pos, "second annotation on %s: one stub is one probe (first at line %d)", fn.Name.Name, anns[0].Pos.Line)
			case len(anns) == 1:
				f.probes = append(f.probes, foundProbe{fn: fn, ann: anns[0]})
				declared = true
			}
		}
		for _, decl := range file.Decls {
			d, ok := decl.(*ast.GenDecl)
			if !ok || d.Tok != token.VAR {
				continue
			}
			for _, s := range d.Specs {
				vs := s.(*ast.ValueSpec)
				ann, annotated := annotatedMaps[vs]
				if !annotated && !b.isMapType(vs.Type) {
					continue
				}
				if len(vs.Names) != 1 || len(vs.Values) != 0 {
					b.diags.errorf(b.pos(vs.Pos()), "declare one map per var, without a value: var NAME runtime.KIND[...]")
					continue
				}
				f.maps = append(f.maps, foundMap{name: vs.Names[0], spec: vs, ann: ann})
				declared = true
			}
		}
		if declared {
			f.constraints[name] = buildConstraint(file)
		}
	}
	sort.Slice(f.probes, func(i, j int) bool { return f.probes[i].fn.Name.Name < f.probes[j].fn.Name.Name })
	sort.Slice(f.events, func(i, j int) bool { return f.events[i].spec.Name.Name < f.events[j].spec.Name.Name })
	sort.Slice(f.maps, func(i, j int) bool { return f.maps[i].name.Name < f.maps[j].name.Name })
	return f
}

// isMapType reports whether expr names one of the runtime's map types
// (runtime.Hash[...], runtime.Log2Hist...).
func (b *builder) isMapType(expr ast.Expr) bool {
	_, ok := b.runtimeType(expr)
	return ok
}

// runtimeType returns the name of the runtime package type expr refers to
// (type arguments stripped), if it is one of the map kinds.
func (b *builder) runtimeType(expr ast.Expr) (string, bool) {
	switch e := expr.(type) {
	case *ast.IndexExpr:
		expr = e.X
	case *ast.IndexListExpr:
		expr = e.X
	}
	sel, ok := expr.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return "", false
	}
	name, ok := b.in.Info.Uses[pkg].(*types.PkgName)
	if !ok || name.Imported().Path() != rtPath {
		return "", false
	}
	_, isMap := mapKinds[sel.Sel.Name]
	return sel.Sel.Name, isMap
}

// buildConstraint is the file's //go:build expression, or "".
func buildConstraint(file *ast.File) string {
	for _, cg := range file.Comments {
		if cg.Pos() >= file.Package {
			break
		}
		for _, c := range cg.List {
			if constraint.IsGoBuild(c.Text) {
				if expr, err := constraint.Parse(c.Text); err == nil {
					return expr.String()
				}
			}
		}
	}
	return ""
}
