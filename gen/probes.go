package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/runtime"
)

// probe resolves one annotated stub against BTF.
func (b *builder) probe(fp foundProbe) {
	fn, a := fp.fn, fp.ann
	stub := fn.Name.Name
	if stub[0] < 'a' || stub[0] > 'z' {
		b.diags.errorf(b.pos(fn.Name.Pos()), "probe stub %s must be unexported and start with a lower-case letter: the generated context type takes its exported name", stub)
		return
	}
	ctx := ContextName(stub)
	if !stubSignature(fn, ctx) {
		b.diags.errorf(b.pos(fn.Pos()), "probe stub %s must be declared as func %s(p *%s)", stub, stub, ctx)
		return
	}
	f, module, scope := b.target(a)
	if f == nil {
		return
	}
	proto := f.Prototype()
	if a.Kind == runtime.TpBtf {
		proto = "tracepoint " + strings.TrimPrefix(proto, "void ")
	}
	p := &Probe{
		Stub: stub, Context: ctx, ProgramFunc: ctx + "Program", SpecFunc: ctx + "Spec", Field: ctx,
		Kind: a.Kind, Target: a.Target, Module: module, Prototype: proto, Sleepable: a.Sleepable, NumSlots: f.NumSlots, Pos: Pos{a.Pos},
	}
	specs := a.Args
	if a.AllArgs {
		for _, param := range f.Params {
			specs = append(specs, argSpec{Name: param.Name, Pos: a.Pos})
		}
	}
	depth := b.opts.Depth
	if a.Depth > 0 {
		depth = a.Depth
	}
	var cnames []string
	for _, s := range specs {
		cnames = append(cnames, s.Name)
	}
	fields := uniqueNames(cnames, contextReserved)
	seen := map[string]bool{}
	ok := true
	for _, s := range specs {
		if seen[s.Name] {
			b.diags.errorf(s.Pos, "duplicate argument %q of %s", s.Name, a.Target)
			ok = false
			continue
		}
		seen[s.Name] = true
		param, err := f.Arg(s.Name)
		if err != nil {
			b.diags.errorf(s.Pos, "%v", err)
			ok = false
			continue
		}
		if !isCIdent(param.Name) {
			b.diags.errorf(s.Pos, "argument %q of %s: BTF gives a name that is not a C identifier (a corrupt or hostile BTF file?)", param.Name, a.Target)
			ok = false
			continue
		}
		arg, err := b.value(scope, param, s.Cast, depth)
		if err != nil {
			b.diags.errorf(s.Pos, "argument %s of %s: %v", s.Name, a.Target, err)
			ok = false
			continue
		}
		arg.GoName = contextField(s.Name, fields)
		arg.Pos = Pos{s.Pos}
		p.Args = append(p.Args, arg)
	}
	if a.Ret {
		if f.Return.Kind == fbtf.KindVoid {
			b.diags.errorf(a.Pos, "ret: %s returns void", a.Target)
			ok = false
		} else if ret, err := b.value(scope, f.Return, "", depth); err != nil {
			b.diags.errorf(a.Pos, "return value of %s: %v", a.Target, err)
			ok = false
		} else {
			ret.GoName, ret.CName, ret.Pos = "Ret", "ret", Pos{a.Pos}
			p.Ret = ret
		}
	}
	if a.Task {
		task, err := fbtf.LookupComposite(b.mods.Vmlinux(), "task_struct")
		if err != nil {
			b.diags.errorf(a.Pos, "task: %v", err)
			ok = false
		} else {
			p.Task = &Arg{CName: "task", GoName: "Task", CType: "struct task_struct *", Kind: ValuePtr, Base: "task_struct", GoType: b.acc.want(task, depth), Pos: Pos{a.Pos}}
		}
	}
	if ok {
		b.model.Probes = append(b.model.Probes, p)
	}
}

// target resolves what the annotation attaches to: a kernel function that
// can be traced (and modified, for fmod_ret), of vmlinux or of a kernel
// module, or a tracepoint; with the module it is in and where its types
// are looked up. f is nil after reporting why not.
func (b *builder) target(a *annotation) (f *fbtf.Func, module string, scope fbtf.Types) {
	if a.Kind == runtime.TpBtf {
		f, err := fbtf.ResolveTracepoint(b.spec, a.Target)
		if err != nil {
			b.diags.errorf(a.TargetPos, "%s: %v", a.Kind, err)
			return nil, "", nil
		}
		return f, "", b.mods.Vmlinux()
	}
	v := b.mods.Validate(a.Module, a.Target, b.opts.Inject)
	if !v.Traceable() {
		pos := a.TargetPos
		if errors.Is(v.Err, fbtf.ErrNoModule) {
			pos = a.ModulePos
		}
		b.diags.errorf(pos, "%s: %v%s", a.Kind, v.Err, moduleHint(v.Err, a.Module))
		return nil, "", nil
	}
	module = v.Module
	if a.Module != "" && v.Module == "" {
		// Module has no BTF, yet vmlinux has the function: built in? The
		// program stays the module's, for kernels where it is one.
		b.diags.warnf(a.ModulePos, "%s: %s", a.Kind, v.Notes[0])
		module = a.Module
	}
	if a.Kind == runtime.FmodRet && v.FmodRet != nil {
		if !errors.Is(v.FmodRet, fbtf.ErrUnknownInject) {
			b.diags.errorf(a.TargetPos, "fmod_ret: %v", v.FmodRet)
			return nil, "", nil
		}
		b.diags.warnf(a.TargetPos, "fmod_ret: %v; the kernel refuses the attach unless %s allows error injection", v.FmodRet, a.Target)
	}
	return v.Func, module, v.Scope
}

// moduleHint tells how to give the BTF of a module that has none at hand.
func moduleHint(err error, module string) string {
	if !errors.Is(err, fbtf.ErrNoModule) || module == "" {
		return ""
	}
	return fmt.Sprintf("; load it here (modprobe %s) for /sys/kernel/btf/%s, pass -btf-module %s=FILE (a copy of that file, or %s.ko), or pin a snapshot that keeps it (fentrygen snapshot)", module, module, module, module)
}

// contextField is an argument's field name in the context type: its Go
// name, suffixed "Arg" where that is a name the context already has (If,
// Return...).
func contextField(cname string, unique map[string]string) string {
	name := unique[cname]
	if contextReserved[goName(cname)] {
		return goName(cname) + "Arg"
	}
	return name
}

// stubSignature checks func name(p *Ctx) with no results.
func stubSignature(fn *ast.FuncDecl, ctx string) bool {
	t := fn.Type
	if fn.Recv != nil || t.TypeParams != nil || t.Results != nil || t.Params == nil || len(t.Params.List) != 1 || len(t.Params.List[0].Names) > 1 {
		return false
	}
	star, ok := t.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	id, ok := star.X.(*ast.Ident)
	return ok && id.Name == ctx
}

// value types an argument or return value; scope is where a cast's
// struct is looked up.
func (b *builder) value(scope fbtf.Types, v fbtf.Value, cast string, depth int) (*Arg, error) {
	arg := &Arg{CName: v.Name, GoName: goName(v.Name), CType: v.CType, Slot: v.Slot}
	if cast != "" && v.Kind != fbtf.KindPointer {
		return arg, fmt.Errorf("only pointers can be viewed as a struct (%s is %s)", v.Name, v.CType)
	}
	switch v.Kind {
	case fbtf.KindInt:
		t, ok := scalarGoType(v.Size, v.Signed)
		if !ok {
			return arg, fmt.Errorf("%d-byte integers are not supported", v.Size)
		}
		arg.Kind, arg.GoType = ValueScalar, t
		return arg, nil
	case fbtf.KindAggregate:
		// A struct by value sits in its slot(s) as raw bits.
		t, ok := scalarGoType(v.Size, false)
		if !ok {
			return arg, fmt.Errorf("%s is a %d-byte struct by value: only 1, 2, 4 or 8 bytes are read as one value (read its two slots with runtime.ArgWord)", v.CType, v.Size)
		}
		arg.Kind, arg.GoType = ValueScalar, t
		return arg, nil
	case fbtf.KindPointer:
		ptr := cbtf.UnderlyingType(v.Type).(*cbtf.Pointer)
		base := compositeName(ptr.Target)
		if cast != "" {
			t, err := fbtf.LookupComposite(scope, cast)
			if err != nil {
				return arg, err
			}
			if base == "" {
				base = cast
			}
			arg.Kind, arg.Base, arg.Cast = ValuePtr, base, cast
			arg.GoType = b.acc.want(t, depth)
			return arg, nil
		}
		if base != "" {
			arg.Kind, arg.Base = ValuePtr, base
			arg.GoType = b.acc.want(ptr.Target, depth)
			return arg, nil
		}
		arg.Kind, arg.GoType = ValueScalar, "uint64"
		return arg, nil
	}
	return arg, fmt.Errorf("unsupported type %s", v.CType)
}
