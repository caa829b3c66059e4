package gen

import (
	"github.com/dave/jennifer/jen"
)

// emitPackage renders what loads the package as a whole: Programs, the
// Objects type with a typed field per program, map and event reader, and
// Load.
func emitPackage(f *jen.File, m *Model) {
	var progs []jen.Code
	for _, p := range m.Probes {
		progs = append(progs, jen.Id(p.ProgramFunc).Call())
	}
	doc(f, "Programs builds every probe of the package.")
	f.Func().Id("Programs").Params().Index().Op("*").Qual(rtPath, "Program").Block(
		jen.Return(jen.Index().Op("*").Qual(rtPath, "Program").Values(progs...)),
	)

	fields := []jen.Code{jen.Op("*").Qual(rtPath, "Objects")}
	values := jen.Dict{jen.Id("Objects"): jen.Id("objs")}
	var opens []jen.Code
	open := func(field string, call jen.Code) {
		opens = append(opens, jen.If(
			jen.List(jen.Id("o").Dot(field), jen.Err()).Op("=").Add(call),
			jen.Err().Op("!=").Nil(),
		).Block(jen.Id("objs").Dot("Close").Call(), jen.Return(jen.Nil(), jen.Err())))
	}
	for _, p := range m.Probes {
		comment := jen.Comment(p.Field + " is probe " + p.Stub + "'s program.")
		if p.Session != nil {
			comment = jen.Comment(p.Field + " is probe " + p.Stub + "'s program: the fsession program, or where").Line().
				Comment("the kernel has none the fentry program of the pair that stands in").Line().
				Comment("for it (Mechanism(\"" + p.Stub + "\") says which; the fexit program is").Line().
				Comment("Programs[\"" + p.Stub + ".exit\"]).")
		}
		if p.Multi != nil {
			comment = jen.Comment(p.Field + " is probe " + p.Stub + "'s program on a tracing multi-link, or nil").Line().
				Comment("where the kernel has none and each function has a program of its own").Line().
				Comment("(Mechanism(\"" + p.Stub + "\") says which; ProgramsOf(\"" + p.Stub + "\") lists them).")
		}
		fields = append(fields, comment.Line().Id(p.Field).Op("*").Qual(ebpfPath, "Program"))
		values[jen.Id(p.Field)] = jen.Id("objs").Dot("Programs").Index(jen.Lit(p.Stub))
	}
	decls := []jen.Code{jen.Id("opts"), jen.Id("Programs").Call()}
	for _, mp := range m.Maps {
		handle, call := mapHandle(mp)
		fields = append(fields, jen.Comment(mp.Field+" is map "+mp.Var+".").Line().Id(mp.Field).Add(handle))
		open(mp.Field, call)
		decls = append(decls, jen.Op("&").Id(mp.Var))
	}
	for _, v := range m.Views {
		if v.Event == nil {
			continue
		}
		e := v.Event
		fields = append(fields, jen.Comment(e.Reader+" reads the "+v.Struct+" records probes output.").Line().
			Id(e.Reader).Op("*").Qual(rtPath, "Reader").Types(jen.Id(v.Struct)))
		open(e.Reader, jen.Qual(rtPath, "OpenReader").Types(jen.Id(v.Struct)).Call(jen.Id("objs"), jen.Lit(e.Map)))
		decls = append(decls, jen.Id(e.RingVar))
	}
	doc(f, "Objects are the package's loaded programs, maps and event readers;\nClose detaches and releases them all.")
	f.Type().Id("Objects").Struct(fields...)

	body := []jen.Code{
		jen.List(jen.Id("objs"), jen.Err()).Op(":=").Qual(rtPath, "LoadPackage").Call(decls...),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		jen.Id("o").Op(":=").Op("&").Id("Objects").Values(values),
	}
	body = append(body, opens...)
	body = append(body, jen.Return(jen.Id("o"), jen.Nil()))
	doc(f, "Load loads and attaches every probe of the package with the package's\nown maps, and opens its event readers; Close the result to detach them.")
	f.Func().Id("Load").Params(jen.Id("opts").Qual(rtPath, "Options")).Params(jen.Op("*").Id("Objects"), jen.Error()).Block(body...)

	for _, v := range m.Views {
		if v.Event != nil {
			f.Var().Id(v.Event.RingVar).Op("=").Qual(rtPath, "NewRing").Call(jen.Lit(v.Event.Map), jen.Lit(int(v.Event.Size)))
		}
	}
}

// mapHandle is the user-space type of a map's handle in Objects and the
// call that opens it.
func mapHandle(mp *Map) (jen.Code, jen.Code) {
	switch mp.Kind {
	case MapLog2Hist, MapLinearHist:
		return jen.Op("*").Qual(rtPath, "HistMap"), jen.Qual(rtPath, "OpenHist").Call(jen.Id("objs"), jen.Op("&").Id(mp.Var))
	case MapLog2HistBy, MapLinearHistBy:
		return jen.Op("*").Qual(rtPath, "HistMapBy").Types(jen.Id(mp.Key.Go)),
			jen.Qual(rtPath, "OpenHistBy").Types(jen.Id(mp.Key.Go)).Call(jen.Id("objs"), jen.Op("&").Id(mp.Var))
	case MapStackTrace:
		return jen.Op("*").Qual(rtPath, "StackMap"), jen.Qual(rtPath, "OpenStackMap").Call(jen.Id("objs"), jen.Op("&").Id(mp.Var))
	}
	key := jen.Id("uint32")
	if mp.Key != nil {
		key = jen.Id(mp.Key.Go)
	}
	types := []jen.Code{key, jen.Id(mp.Value.Go)}
	return jen.Op("*").Qual(rtPath, "Map").Types(types...),
		jen.Qual(rtPath, "OpenMap").Types(types...).Call(jen.Id("objs"), jen.Lit(mp.Var))
}
