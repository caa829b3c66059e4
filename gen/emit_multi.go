package gen

import (
	"strings"

	"github.com/dave/jennifer/jen"
)

// emitMulti renders a probe on several functions: its context, with the
// arguments every function has alike and methods that tell which
// function runs, and a builder of one program that Load attaches to every
// function of the list it resolves on the running kernel (one tracing
// multi-link, or one link per function).
func emitMulti(f *jen.File, p *Probe) {
	m := p.Multi
	fields, values := contextFields(p, p.Args, p.Ret, p.Task)
	doc(f, "%s is what probe %s sees: %s on each of %s, which matched\n%d functions when generated:\n%s.", p.Context, p.Stub, p.Kind, p.Target, len(m.Funcs), p.Prototype)
	f.Type().Id(p.Context).Struct(fields...)

	doc(f, "%s is the position of the traced function in the list Load attached\nprobe %s to (Objects.TargetsOf(%q)): the link's cookie, or a constant\nwhere each function has a program of its own.", m.FuncIndex, p.Stub, p.Stub)
	f.Func().Params(jen.Id("p").Op("*").Id(p.Context)).Id(m.FuncIndex).Params().Qual(rtPath, "U32").Block(
		jen.Return(jen.Qual(rtPath, "FuncIndex").Call(jen.Id("p"))),
	)
	doc(f, "%s is the address of the traced function (bpf_get_func_ip);\nObjects.TargetOf names it.", m.FuncIP)
	f.Func().Params(jen.Id("p").Op("*").Id(p.Context)).Id(m.FuncIP).Params().Qual(rtPath, "U64").Block(
		jen.Return(jen.Qual(rtPath, "FuncIP").Call()),
	)

	var targets []jen.Code
	for _, t := range m.Targets {
		targets = append(targets, jen.Lit(t))
	}
	doc(f, "%s builds probe %s by running its stub: one program for a\ntracing multi-link on %s. Where the kernel has none, Load runs the\nstub again for a program per function.", p.ProgramFunc, p.Stub, strings.Join(m.Targets, ","))
	f.Func().Id(p.ProgramFunc).Params().Op("*").Qual(rtPath, "Program").Block(
		jen.Return(jen.Qual(rtPath, "NewMulti").Call(jen.Qual(rtPath, "Info").Values(multiInfo(p, targets)),
			jen.Func().Params(jen.Id("p").Op("*").Qual(rtPath, "Program")).Block(
				jen.Id(p.Stub).Call(jen.Op("&").Id(p.Context).Values(values)),
			))),
	)
	doc(f, "%s returns probe %s as the ProgramSpec of a tracing multi-link on\nthe functions of target that match %s (attach type\nBPF_TRACE_%s_MULTI, which cilium/ebpf v0.22.0 cannot attach: Load can).", p.SpecFunc, p.Stub, strings.Join(m.Targets, ","), strings.ToUpper(p.Kind.String()))
	emitSpecFunc(f, p)
}

// multiInfo is the runtime.Info of a probe on several functions.
func multiInfo(p *Probe, targets []jen.Code) jen.Dict {
	info := jen.Dict{
		jen.Id("Name"):    jen.Lit(p.Stub),
		jen.Id("Kind"):    jen.Qual(rtPath, kindConsts[p.Kind]),
		jen.Id("Targets"): jen.Index().String().Values(targets...),
	}
	if p.Sleepable {
		info[jen.Id("Sleepable")] = jen.True()
	}
	return info
}
