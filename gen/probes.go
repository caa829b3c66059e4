package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"path"
	"slices"
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
	var funcs []*fbtf.Func
	if len(a.Targets) > 0 {
		if funcs = b.multiTargets(a); funcs == nil {
			return
		}
	}
	f, module, scope := b.target(a, funcs)
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
	if a.Kind == runtime.Fsession {
		p.Session = &Session{Entry: ctx + "Entry", Exit: ctx + "Exit", Cookie: cookieGoType(a.Cookie), CookieC: a.Cookie}
	}
	if funcs != nil {
		var names, protos []string
		for _, fn := range funcs {
			names = append(names, fn.Name)
			protos = append(protos, fn.Prototype())
		}
		p.Prototype = strings.Join(protos, ",\n")
		p.Multi = &Multi{Targets: a.Targets, Funcs: names, FuncIndex: "FuncIndex", FuncIP: "FuncIP"}
	}
	specs := a.Args
	if a.AllArgs {
		for _, param := range f.Params {
			// Without args=, a probe on several functions gets the
			// arguments they all have alike.
			if funcs == nil || differs(funcs, param) == "" {
				specs = append(specs, argSpec{Name: param.Name, Pos: a.Pos})
			}
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
	reserved := reservedFor(a.Kind, funcs != nil)
	fields := uniqueNames(cnames, reserved)
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
		if err != nil && funcs != nil {
			// The first function lacks it: say so if another has it.
			for _, fn := range funcs[1:] {
				if q, qerr := fn.Arg(s.Name); qerr == nil {
					param, err = q, nil
					break
				}
			}
		}
		if err != nil {
			b.diags.errorf(s.Pos, "%v", err)
			ok = false
			continue
		}
		if funcs != nil {
			if why := differs(funcs, param); why != "" {
				b.diags.errorf(s.Pos, "argument %s: %s; a probe on several functions reads an argument only where every function has it, by the same name and type in the same slot (leave the function out, or probe it on its own)", s.Name, why)
				ok = false
				continue
			}
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
		arg.GoName = contextField(s.Name, fields, reserved)
		arg.Pos = Pos{s.Pos}
		p.Args = append(p.Args, arg)
	}
	if a.Ret {
		if why := differsRet(funcs, f.Return); why != "" {
			b.diags.errorf(a.Pos, "ret: %s; a probe on several functions reads the return value only when every function returns the same type (leave the function out, or probe it on its own)", why)
			ok = false
		} else if f.Return.Kind == fbtf.KindVoid {
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

// multiTargets resolves the names and patterns of a probe on several
// functions: the functions, sorted by name; nil after reporting why not.
// A name that cannot be traced is an error; a pattern's matches that
// cannot be are left out with a warning.
func (b *builder) multiTargets(a *annotation) []*fbtf.Func {
	m, err := fbtf.MatchFuncs(b.spec, a.Targets, a.Kind == runtime.Fexit)
	if err != nil {
		b.diags.errorf(a.TargetPos, "%s: %v", a.Kind, err)
		return nil
	}
	bad := false
	for i, t := range a.Targets {
		if fbtf.IsPattern(t) {
			continue
		}
		if slices.Contains(m.Missing, t) {
			_, err := fbtf.ResolveFunc(b.spec, t)
			b.diags.errorf(a.TargetsPos[i], "%s: %v", a.Kind, err)
			bad = true
		}
		for _, skip := range m.Skipped {
			if skip.Name == t {
				b.diags.errorf(a.TargetsPos[i], "%s: %v", a.Kind, skip.Reason)
				bad = true
			}
		}
	}
	var left []string
	for _, skip := range m.Skipped {
		if !slices.Contains(a.Targets, skip.Name) {
			left = append(left, skip.Reason.Error())
		}
	}
	if len(left) > 0 {
		b.diags.warnf(a.TargetPos, "%s: left out: %s", a.Target, strings.Join(left, "; "))
	}
	for i, t := range a.Targets {
		if !fbtf.IsPattern(t) {
			continue
		}
		any := false
		for _, f := range m.Funcs {
			if ok, _ := path.Match(t, f.Name); ok {
				any = true
				break
			}
		}
		if !any {
			b.diags.errorf(a.TargetsPos[i], "%s: pattern %s matches no function that can be traced in %s", a.Kind, t, b.opts.BTFName)
			bad = true
		}
	}
	if bad || len(m.Funcs) == 0 {
		return nil
	}
	return m.Funcs
}

// differs says how the argument of funcs[0] param differs in the other
// functions ("" when it does not): missing, of another type or in
// another slot.
func differs(funcs []*fbtf.Func, param fbtf.Value) string {
	var first string
	for _, fn := range funcs {
		if q, err := fn.Arg(param.Name); err == nil && q.Type == param.Type && q.Slot == param.Slot {
			first = fn.Name
			break
		}
	}
	for _, fn := range funcs {
		q, err := fn.Arg(param.Name)
		switch {
		case err != nil:
			return fmt.Sprintf("%s has no %s (have %s)", fn.Name, param.Name, strings.Join(fn.ArgNames(), ", "))
		case q.CType != param.CType || q.Size != param.Size || q.Kind != param.Kind:
			return fmt.Sprintf("%s in %s but %s in %s", q.CType, fn.Name, param.CType, first)
		case q.Slot != param.Slot || q.Slots != param.Slots:
			return fmt.Sprintf("in slot %d of %s but in slot %d of %s", q.Slot, fn.Name, param.Slot, first)
		}
	}
	return ""
}

// differsRet says how the return value of the functions differs from
// ret, funcs[0]'s ("" when it does not, or for a probe on one function).
func differsRet(funcs []*fbtf.Func, ret fbtf.Value) string {
	if len(funcs) == 0 {
		return ""
	}
	for _, fn := range funcs[1:] {
		if q := fn.Return; q.CType != ret.CType || q.Size != ret.Size || q.Kind != ret.Kind {
			return fmt.Sprintf("%s returns %s but %s returns %s", fn.Name, q.CType, funcs[0].Name, ret.CType)
		}
	}
	return ""
}

// target resolves what the annotation attaches to: a kernel function that
// can be traced (and modified, for fmod_ret), of vmlinux or of a kernel
// module, or a tracepoint; with the module it is in and where its types
// are looked up. f is nil after reporting why not. For a probe on several
// functions it is the first of funcs, which multiTargets resolved in
// vmlinux.
func (b *builder) target(a *annotation, funcs []*fbtf.Func) (f *fbtf.Func, module string, scope fbtf.Types) {
	if len(funcs) > 0 {
		return funcs[0], "", b.mods.Vmlinux()
	}
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
	if (a.Kind == runtime.Fexit || a.Kind == runtime.Fsession) && v.Fexit != nil {
		b.diags.errorf(a.TargetPos, "%s: %v", a.Kind, v.Fexit)
		return nil, "", nil
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
func contextField(cname string, unique map[string]string, reserved map[string]bool) string {
	name := unique[cname]
	if reserved[goName(cname)] {
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
