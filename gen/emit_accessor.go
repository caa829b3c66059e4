package gen

import (
	"github.com/dave/jennifer/jen"
)

// emitAccessor renders an accessor type: a runtime.Ptr and one method per
// member, each returning a typed value or the next accessor.
func emitAccessor(f *jen.File, a *Accessor) {
	recv := jen.Id("s").Id(a.GoName)
	doc(f, "%s reads %s through a pointer; each method is one member.", a.GoName, a.CName)
	f.Type().Id(a.GoName).Struct(jen.Id("ptr").Qual(rtPath, "Ptr"))
	doc(f, "Ptr is the pointer and member path this value stands for.")
	f.Func().Params(recv).Id("Ptr").Params().Qual(rtPath, "Ptr").Block(jen.Return(jen.Id("s").Dot("ptr")))
	for _, m := range a.Members {
		ptr := jen.Id("s").Dot("ptr")
		field := func(path jen.Code) jen.Code {
			return jen.Return(jen.Qual(rtPath, "Field").Types(jen.Id(m.GoType)).Call(ptr, path))
		}
		wrap := func(p jen.Code) jen.Code {
			return jen.Return(jen.Id(m.GoType).Values(jen.Dict{jen.Id("ptr"): p}))
		}
		index := jen.Qual(rtPath, "Index").Call(jen.Lit(m.CName), jen.Id("i"))
		switch m.Kind {
		case ValueScalar:
			doc(f, "%s reads %s (%s).", m.GoName, m.CName, m.CType)
			f.Func().Params(recv).Id(m.GoName).Params().Qual(rtPath, numAlias(m.GoType)).Block(field(jen.Lit(m.CName)))
		case ValueEmbedded:
			doc(f, "%s is the member %s (%s), held by value.", m.GoName, m.CName, m.CType)
			f.Func().Params(recv).Id(m.GoName).Params().Id(m.GoType).Block(wrap(ptr.Clone().Dot("Member").Call(jen.Lit(m.CName))))
		case ValuePtr:
			doc(f, "%s follows the pointer %s (%s): one load.", m.GoName, m.CName, m.CType)
			f.Func().Params(recv).Id(m.GoName).Params().Id(m.GoType).Block(wrap(ptr.Clone().Dot("Deref").Call(jen.Lit(m.CName), jen.Lit(m.Base))))
		case ValueArray:
			doc(f, "%s reads element i of %s (%s); i must be below %d.", m.GoName, m.CName, m.CType, m.Len)
			f.Func().Params(recv).Id(m.GoName).Params(jen.Id("i").Int()).Qual(rtPath, numAlias(m.GoType)).Block(field(index))
		case ValueArrayAcc:
			doc(f, "%s is element i of %s (%s); i must be below %d.", m.GoName, m.CName, m.CType, m.Len)
			f.Func().Params(recv).Id(m.GoName).Params(jen.Id("i").Int()).Id(m.GoType).Block(wrap(ptr.Clone().Dot("Member").Call(index)))
		}
	}
}
