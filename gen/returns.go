package gen

import (
	"go/ast"
	"go/constant"
	"go/types"

	"github.com/fentrygen/fentrygen/runtime"
)

// checkReturns reports calls of Return with a constant the kernel would
// misread: fentry and fexit programs return 0; fmod_ret returns 0 or a
// negative errno, and anything else (1, +EPERM) would silently become the
// traced function's result. The runtime refuses them too, when the program
// is built; here they get a position.
func (b *builder) checkReturns(info *types.Info) {
	kinds := map[*ast.FuncDecl]runtime.Kind{}
	for _, p := range b.model.Probes {
		for _, f := range b.in.Files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == p.Stub && fn.Recv == nil {
					kinds[fn] = p.Kind
				}
			}
		}
	}
	for _, f := range b.in.Files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			kind, isStub := kinds[fn]
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 || !b.isRuntimeReturn(info, call.Fun) {
					return true
				}
				tv := info.Types[call.Args[0]]
				if tv.Value == nil {
					return true
				}
				v, exact := constant.Int64Val(tv.Value)
				pos := b.pos(call.Args[0].Pos())
				switch {
				case !exact:
				case isStub && kind != runtime.FmodRet && v != 0:
					b.diags.errorf(pos, "%s programs must return 0, not %d", kind, v)
				case v > 0:
					b.diags.errorf(pos, "fmod_ret returns 0 or a negative errno, not %d: a positive value would become the traced function's result (did you mean %d?)", v, -v)
				case v < -runtime.MaxErrno:
					b.diags.errorf(pos, "fmod_ret returns 0 or a negative errno (-%d to -1), not %d", runtime.MaxErrno, v)
				}
				return true
			})
		}
	}
}

// isRuntimeReturn reports whether fun selects the Return method of the
// runtime's Probe or Program.
func (b *builder) isRuntimeReturn(info *types.Info, fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Return" {
		return false
	}
	s, ok := info.Selections[sel]
	if !ok {
		return false
	}
	f, ok := s.Obj().(*types.Func)
	return ok && f.Pkg() != nil && f.Pkg().Path() == rtPath
}
