package gen

import (
	"github.com/dave/jennifer/jen"
)

// emitView renders a view type: the user's struct as programs see it, one
// method per way of reading or writing a field, and Output for events.
func emitView(f *jen.File, v *View) {
	recv := jen.Id("v").Id(v.GoName)
	view := jen.Id("v").Dot("ViewOf").Dot("View")
	zero := jen.Id(v.Struct).Values()
	what := "in program memory (the stack or a map value)"
	if v.Event != nil {
		what = "as probes build it to send to the ring buffer"
	}
	doc(f, "%s is a %s %s; fields sit at the\nGo struct's own offsets.", v.GoName, v.Struct, what)
	f.Type().Id(v.GoName).Struct(jen.Qual(rtPath, "ViewOf").Types(jen.Id(v.Struct)))
	doc(f, "%s starts a zeroed %s on the probe's stack.", v.New, v.Struct)
	f.Func().Id(v.New).Params(jen.Id("p").Qual(rtPath, "Ctx")).Id(v.GoName).Block(
		jen.Return(jen.Id(v.GoName).Values(jen.Qual(rtPath, "NewView").Types(jen.Id(v.Struct)).Call(jen.Id("p")))),
	)
	for _, fl := range v.Fields {
		off := jen.Qual("unsafe", "Offsetof").Call(zero.Clone().Dot(fl.Name))
		size := jen.Qual("unsafe", "Sizeof").Call(zero.Clone().Dot(fl.Name))
		method := func(name, comment string, params []jen.Code, result jen.Code, body jen.Code) {
			if name == "" {
				return
			}
			doc(f, "%s %s", name, comment)
			fn := f.Func().Params(recv.Clone()).Id(name).Params(params...)
			if result != nil {
				fn.Add(result)
			}
			fn.Block(body)
		}
		switch fl.Kind {
		case FieldInt:
			num := jen.Qual(rtPath, numAlias(fl.GoType))
			x := []jen.Code{jen.Id("x").Add(num.Clone())}
			method(fl.Get, "reads "+fl.Name+".", nil, num.Clone(),
				jen.Return(jen.Qual(rtPath, "Get").Types(jen.Id(fl.GoType)).Call(view.Clone(), off.Clone())))
			method(fl.Set, "stores x into "+fl.Name+".", x, nil,
				jen.Qual(rtPath, "Set").Call(view.Clone(), off.Clone(), jen.Id("x")))
			method(fl.Add, "adds x to "+fl.Name+" atomically.", x, nil,
				jen.Qual(rtPath, "AtomicAdd").Call(view.Clone(), off.Clone(), jen.Id("x")))
		case FieldBytes:
			method(fl.Get, "is the byte array "+fl.Name+", to copy into another view.", nil, jen.Qual(rtPath, "Bytes"),
				jen.Return(jen.Qual(rtPath, "BytesOf").Call(view.Clone(), off.Clone(), size.Clone())))
			method(fl.Set, "copies b into "+fl.Name+".", []jen.Code{jen.Id("b").Qual(rtPath, "Bytes")}, nil,
				jen.Qual(rtPath, "SetBytes").Call(view.Clone(), off.Clone(), size.Clone(), jen.Id("b")))
			method(fl.FromString, "copies the NUL-terminated kernel string at a into "+fl.Name+".", []jen.Code{jen.Id("a").Qual(rtPath, "Addr")}, nil,
				jen.Qual(rtPath, "SetString").Call(view.Clone(), off.Clone(), size.Clone(), jen.Id("a")))
			method(fl.FromKernel, "copies the bytes at kernel address a into "+fl.Name+".", []jen.Code{jen.Id("a").Qual(rtPath, "Addr")}, nil,
				jen.Qual(rtPath, "SetKernelBytes").Call(view.Clone(), off.Clone(), size.Clone(), jen.Id("a")))
			method(fl.FromCurrent, "stores the current task's comm into "+fl.Name+".", nil, nil,
				jen.Qual(rtPath, "SetComm").Call(view.Clone(), off.Clone(), size.Clone()))
		}
	}
	if v.Event != nil {
		doc(f, "Output sends the event to its ring buffer; what does not fit is\ncounted (Objects.%s.Lost).", v.Event.Reader)
		f.Func().Params(recv).Id("Output").Params().Block(jen.Id(v.Event.RingVar).Dot("Output").Call(view.Clone()))
	}
}
