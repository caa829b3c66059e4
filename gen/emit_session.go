package gen

import (
	"github.com/dave/jennifer/jen"
)

// emitSession renders an fsession probe: its context, which the code
// outside the parts sees at both runs, with AtEntry and AtExit; the entry
// part's type with SetCookie; the exit part's type with Ret and Cookie.
// What belongs to one part is not a member of the other's type, so the Go
// compiler refuses it there.
func emitSession(f *jen.File, p *Probe) {
	s := p.Session
	fields, values := contextFields(p, p.Args, nil, p.Task)
	doc(f, "%s is what probe %s sees: fsession on\n%s,\nrun at the call and at the return: code outside AtEntry and AtExit runs at both.", p.Context, p.Stub, p.Prototype)
	f.Type().Id(p.Context).Struct(fields...)

	// The parts' values: the context's, read again where a part uses them.
	partValues := func() jen.Dict {
		d := jen.Dict{jen.Id("Probe"): jen.Id("p").Dot("Probe")}
		for _, a := range p.Args {
			d[jen.Id(a.GoName)] = jen.Id("p").Dot(a.GoName)
		}
		if p.Task != nil {
			d[jen.Id(p.Task.GoName)] = jen.Id("p").Dot(p.Task.GoName)
		}
		return d
	}
	shared, exitValues := partValues(), partValues()
	if p.Ret != nil {
		exitValues[jen.Id(p.Ret.GoName)] = argValue(p, p.Ret)
	}
	exitValues[jen.Id("Cookie")] = jen.Qual(rtPath, "Cookie").Types(jen.Id(s.Cookie)).Call(jen.Id("p"))

	doc(f, "AtEntry adds entry to probe %s: what runs when %s is called.", p.Stub, p.Target)
	f.Func().Params(jen.Id("p").Op("*").Id(p.Context)).Id("AtEntry").Params(jen.Id("entry").Func().Params(jen.Id("e").Op("*").Id(s.Entry))).Block(
		jen.Qual(rtPath, "AtEntry").Call(jen.Id("p"), jen.Func().Params().Block(
			jen.Id("entry").Call(jen.Op("&").Id(s.Entry).Values(shared)),
		)),
	)
	doc(f, "AtExit adds exit to probe %s: what runs when %s returns.", p.Stub, p.Target)
	f.Func().Params(jen.Id("p").Op("*").Id(p.Context)).Id("AtExit").Params(jen.Id("exit").Func().Params(jen.Id("x").Op("*").Id(s.Exit))).Block(
		jen.Qual(rtPath, "AtExit").Call(jen.Id("p"), jen.Func().Params().Block(
			jen.Id("exit").Call(jen.Op("&").Id(s.Exit).Values(exitValues)),
		)),
	)

	entryFields, _ := contextFields(p, p.Args, nil, p.Task)
	doc(f, "%s is probe %s at the call of %s: the arguments, and\nthe call's cookie to set.", s.Entry, p.Stub, p.Target)
	f.Type().Id(s.Entry).Struct(entryFields...)
	cookie := jen.Qual(rtPath, numAlias(s.Cookie))
	doc(f, "SetCookie keeps v as this call's cookie, which the exit part reads\n(Cookie). The kernel keeps one u64 per call.")
	f.Func().Params(jen.Id("e").Op("*").Id(s.Entry)).Id("SetCookie").Params(jen.Id("v").Add(cookie)).Block(
		jen.Qual(rtPath, "SetCookie").Call(jen.Id("e"), jen.Id("v")),
	)

	exitFields, _ := contextFields(p, p.Args, p.Ret, p.Task)
	exitFields = append(exitFields, jen.Comment("Cookie is what the entry part set for this call (SetCookie); 0 if it").Line().
		Comment("set none.").Line().Id("Cookie").Add(cookie))
	doc(f, "%s is probe %s at the return of %s: the arguments,\nthe return value (with ret) and the call's cookie.", s.Exit, p.Stub, p.Target)
	f.Type().Id(s.Exit).Struct(exitFields...)

	doc(f, "%s builds probe %s by running its stub: one fsession\nprogram. Where the kernel has no fsession, Load runs the stub again\nfor the fentry and fexit programs that stand in for it (Halves).", p.ProgramFunc, p.Stub)
	f.Func().Id(p.ProgramFunc).Params().Op("*").Qual(rtPath, "Program").Block(
		jen.Return(jen.Qual(rtPath, "NewSession").Call(
			jen.Qual(rtPath, "Info").Values(probeInfo(p)),
			jen.Func().Params(jen.Id("p").Op("*").Qual(rtPath, "Program")).Block(
				jen.Id(p.Stub).Call(jen.Op("&").Id(p.Context).Values(values)),
			),
		)),
	)
	doc(f, "%s returns probe %s as an fsession ProgramSpec for target\n(BPF_TRACE_FSESSION, which cilium/ebpf v0.22.0 cannot load: Load can).", p.SpecFunc, p.Stub)
	emitSpecFunc(f, p)
}
