package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/runtime"
)

// Options tune [Build].
type Options struct {
	// Depth is how many pointer hops from an argument get accessor types
	// (an annotation's depth= overrides it); 0 means 1.
	Depth int
	// Inject is the error-injection list of the kernel the probes target,
	// or nil when unknown (fmod_ret on other than security_* then warns).
	Inject fbtf.ErrorInjection
	// BTFName says where spec came from, for -debug-model.
	BTFName string
}

// Build resolves the annotations of in against spec into a model. It
// returns diagnostics (errors and warnings) sorted by position; the model is
// nil when there are errors.
func Build(in *Input, spec *cbtf.Spec, opts Options) (*Model, Diagnostics) {
	if opts.Depth <= 0 {
		opts.Depth = 1
	}
	b := &builder{
		in:      in,
		spec:    spec,
		opts:    opts,
		fset:    in.Pkg.Fset,
		structs: map[cbtf.Type]*structInfo{},
		failed:  map[string]bool{},
		goNames: map[string]cbtf.Type{},
		model:   &Model{Package: in.Pkg.Name, PkgPath: in.Pkg.PkgPath, BTF: opts.BTFName},
	}
	b.scan()
	b.accessors()
	b.checkNames()
	b.filterLoadErrors()
	ds := b.diags.list.sorted()
	if ds.HasErrors() {
		return nil, ds
	}
	return b.model, ds
}

type builder struct {
	in    *Input
	spec  *cbtf.Spec
	opts  Options
	fset  *token.FileSet
	diags diags
	model *Model
	// structs are the C types that get accessors, with the pointer hops
	// still allowed below them.
	structs map[cbtf.Type]*structInfo
	order   []cbtf.Type
	goNames map[string]cbtf.Type
	// failed are the context types of stubs whose annotation had errors:
	// their absence is reported through those errors, not again as
	// "undefined".
	failed map[string]bool
}

type structInfo struct {
	goName string
	cName  string
	base   string // the C name paths start from; "" for anonymous types
	rem    int    // pointer hops allowed below this type
}

func (b *builder) pos(p token.Pos) token.Position { return b.fset.Position(p) }

// scan finds annotations and event types in every file but the output.
func (b *builder) scan() {
	for _, f := range b.in.Pkg.Syntax {
		name := b.fset.Position(f.Pos()).Filename
		if filepath.Clean(name) == filepath.Clean(b.in.Output) {
			continue
		}
		funcDocs := map[*ast.CommentGroup]*ast.FuncDecl{}
		eventDocs := map[*ast.CommentGroup]*ast.TypeSpec{}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Doc != nil {
					funcDocs[d.Doc] = d
				}
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, s := range d.Specs {
					ts := s.(*ast.TypeSpec)
					if ts.Doc != nil {
						eventDocs[ts.Doc] = ts
					}
					if d.Doc != nil && len(d.Specs) == 1 {
						eventDocs[d.Doc] = ts
					}
				}
			}
		}
		for _, cg := range f.Comments {
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
					// Until the probe is known good, its context type's
					// absence is explained by the annotation's errors.
					b.failed[ContextName(fn.Name.Name)] = true
					a, err := parseAnnotation(pos, c.Text)
					if err != nil {
						b.report(pos, err)
						continue
					}
					anns = append(anns, a)
				case strings.HasPrefix(c.Text, eventPrefix):
					ts := eventDocs[cg]
					if ts == nil {
						b.diags.errorf(pos, "%s is not on a type declaration", eventPrefix)
						continue
					}
					e, err := parseEvent(pos, c.Text)
					if err != nil {
						b.report(pos, err)
						continue
					}
					b.event(ts, e)
				}
			}
			switch {
			case len(anns) > 1:
				b.diags.errorf(anns[1].Pos, "second annotation on %s: one stub is one probe (first at line %d)", fn.Name.Name, anns[0].Pos.Line)
			case len(anns) == 1:
				b.probe(fn, anns[0])
			}
		}
	}
	sort.Slice(b.model.Probes, func(i, j int) bool { return b.model.Probes[i].Stub < b.model.Probes[j].Stub })
	sort.Slice(b.model.Events, func(i, j int) bool { return b.model.Events[i].GoName < b.model.Events[j].GoName })
}

func (b *builder) report(pos token.Position, err error) {
	var pe posError
	if errors.As(err, &pe) {
		pos = pe.pos
	}
	b.diags.errorf(pos, "%v", err)
}

// probe resolves one annotated stub.
func (b *builder) probe(fn *ast.FuncDecl, a *annotation) {
	stub := fn.Name.Name
	if stub[0] < 'a' || stub[0] > 'z' {
		b.diags.errorf(b.pos(fn.Name.Pos()), "probe stub %s must be unexported and start with a lower-case letter: the generated context type takes its exported name", stub)
		return
	}
	ctx := ContextName(stub)
	if !b.stubSignature(fn, ctx) {
		b.diags.errorf(b.pos(fn.Pos()), "probe stub %s must be declared as func %s(p *%s)", stub, stub, ctx)
		return
	}
	v := fbtf.Validate(b.spec, a.Target, b.opts.Inject)
	if !v.Traceable() {
		b.diags.errorf(a.TargetPos, "%s: %v", a.Kind, v.Err)
		return
	}
	if a.Kind == runtime.FmodRet && v.FmodRet != nil {
		if errors.Is(v.FmodRet, fbtf.ErrUnknownInject) {
			b.diags.warnf(a.TargetPos, "fmod_ret: %v; the kernel refuses the attach unless %s allows error injection", v.FmodRet, a.Target)
		} else {
			b.diags.errorf(a.TargetPos, "fmod_ret: %v", v.FmodRet)
			return
		}
	}
	f := v.Func
	p := Probe{Stub: stub, Context: ctx, Kind: a.Kind, Target: a.Target, Prototype: f.Prototype(), Sleepable: a.Sleepable, NumSlots: f.NumSlots, Pos: a.Pos}
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
		arg, err := b.value(param, s.Cast, depth)
		if err != nil {
			b.diags.errorf(s.Pos, "argument %s of %s: %v", s.Name, a.Target, err)
			ok = false
			continue
		}
		p.Args = append(p.Args, arg)
	}
	if a.Ret {
		if f.Return.Kind == fbtf.KindVoid {
			b.diags.errorf(a.Pos, "ret: %s returns void", a.Target)
			ok = false
		} else {
			ret, err := b.value(f.Return, "", depth)
			if err != nil {
				b.diags.errorf(a.Pos, "return value of %s: %v", a.Target, err)
				ok = false
			} else {
				ret.GoName = "Ret"
				p.Ret = &ret
			}
		}
	}
	if ok {
		b.model.Probes = append(b.model.Probes, p)
	}
}

// ContextName is the generated context type of a stub: its name with the
// first letter upper-cased (onConnect -> OnConnect).
func ContextName(stub string) string { return strings.ToUpper(stub[:1]) + stub[1:] }

// stubSignature checks func name(p *Ctx) with no results.
func (b *builder) stubSignature(fn *ast.FuncDecl, ctx string) bool {
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

// value types an argument or return value.
func (b *builder) value(v fbtf.Value, cast string, depth int) (Arg, error) {
	arg := Arg{CName: v.Name, GoName: goName(v.Name), CType: v.CType, Slot: v.Slot, Size: v.Size, Signed: v.Signed}
	if cast != "" && v.Kind != fbtf.KindPointer {
		return arg, fmt.Errorf("only pointers can be viewed as a struct (%s is %s)", v.Name, v.CType)
	}
	switch v.Kind {
	case fbtf.KindInt:
		t, err := scalarType(v.Size, v.Signed)
		arg.Kind, arg.GoType = KindScalar, t
		return arg, err
	case fbtf.KindAggregate:
		// A struct by value sits in its slot(s) as raw bits.
		t, err := scalarType(v.Size, false)
		if err != nil {
			return arg, fmt.Errorf("%s is a %d-byte struct by value: only 1, 2, 4 or 8 bytes are read as one value (read its two slots with runtime.Program.ArgWord)", v.CType, v.Size)
		}
		arg.Kind, arg.GoType, arg.Signed = KindScalar, t, false
		return arg, nil
	case fbtf.KindPointer:
		ptr := cbtf.UnderlyingType(v.Type).(*cbtf.Pointer)
		pointee := cbtf.UnderlyingType(ptr.Target)
		if cast != "" {
			t, err := fbtf.LookupComposite(b.spec, cast)
			if err != nil {
				return arg, err
			}
			base := namedBase(pointee)
			if base == "" {
				base = cast
			}
			arg.Kind, arg.Base, arg.Cast = KindPtr, base, cast
			arg.GoType = b.want(t, depth-1)
			return arg, nil
		}
		if base := namedBase(pointee); base != "" {
			arg.Kind, arg.Base = KindPtr, base
			arg.GoType = b.want(pointee, depth-1)
			return arg, nil
		}
		arg.Kind, arg.GoType, arg.Size, arg.Signed = KindScalar, "U64", 8, false
		return arg, nil
	}
	return arg, fmt.Errorf("unsupported type %s", v.CType)
}

// namedBase is the C name of a named struct or union, or "".
func namedBase(t cbtf.Type) string {
	switch c := t.(type) {
	case *cbtf.Struct:
		return c.Name
	case *cbtf.Union:
		return c.Name
	}
	return ""
}

// want records that t needs an accessor with rem pointer hops below it and
// returns the accessor's Go name.
func (b *builder) want(t cbtf.Type, rem int) string {
	return b.wantNamed(t, rem, "", "")
}

func (b *builder) wantNamed(t cbtf.Type, rem int, parent, member string) string {
	t = cbtf.UnderlyingType(t)
	if info, ok := b.structs[t]; ok {
		if rem > info.rem {
			info.rem = rem
		}
		return info.goName
	}
	base := namedBase(t)
	kind := "struct"
	if _, ok := t.(*cbtf.Union); ok {
		kind = "union"
	}
	var name, cname string
	if base != "" {
		name, cname = goName(base), kind+" "+base
	} else {
		name, cname = parent+goName(member), fmt.Sprintf("%s {...} (%s in %s)", kind, member, parent)
	}
	if other, taken := b.goNames[name]; taken && other != t {
		name += goName(kind)
		for i := 2; b.goNames[name] != nil; i++ {
			name = fmt.Sprintf("%s%s%d", goName(base+member), goName(kind), i)
		}
	}
	b.goNames[name] = t
	b.structs[t] = &structInfo{goName: name, cName: cname, base: base, rem: rem}
	b.order = append(b.order, t)
	return name
}

// accessors builds the accessor types: members of every wanted struct,
// wanting further types as embedded members and pointer hops allow, until
// nothing changes.
func (b *builder) accessors() {
	for changed := true; changed; {
		changed = false
		before := map[cbtf.Type]int{}
		for t, info := range b.structs {
			before[t] = info.rem
		}
		for i := 0; i < len(b.order); i++ {
			b.members(b.order[i])
		}
		for t, info := range b.structs {
			if old, ok := before[t]; !ok || old != info.rem {
				changed = true
			}
		}
	}
	for _, t := range b.order {
		info := b.structs[t]
		b.model.Structs = append(b.model.Structs, Accessor{GoName: info.goName, CName: info.cName, Members: b.members(t)})
	}
	sort.Slice(b.model.Structs, func(i, j int) bool { return b.model.Structs[i].GoName < b.model.Structs[j].GoName })
}

// members lists t's accessor methods, wanting the types they lead to.
func (b *builder) members(t cbtf.Type) []Member {
	info := b.structs[t]
	var out []Member
	used := map[string]bool{"Ptr": true}
	for _, m := range fbtf.VisibleMembers(t) {
		if m.Name == "" {
			continue
		}
		mem := Member{CName: m.Name, GoName: goName(m.Name), CType: fbtf.CType(m.Type)}
		for used[mem.GoName] {
			mem.GoName += "_"
		}
		u := cbtf.UnderlyingType(m.Type)
		switch {
		case m.BitfieldSize > 0:
			size, signed, ok := intOf(u)
			if !ok {
				continue
			}
			mem.Kind, mem.Size, mem.Signed = KindBitfield, size, signed
			mem.GoType, _ = scalarType(size, signed)
		case isComposite(u):
			mem.Kind = KindEmbedded
			mem.GoType = b.wantNamed(u, info.rem, info.goName, m.Name)
		default:
			if size, signed, ok := intOf(u); ok {
				st, err := scalarType(size, signed)
				if err != nil {
					continue
				}
				mem.Kind, mem.Size, mem.Signed, mem.GoType = KindScalar, size, signed, st
				break
			}
			if p, ok := u.(*cbtf.Pointer); ok {
				pointee := cbtf.UnderlyingType(p.Target)
				if base := namedBase(pointee); base != "" && info.rem > 0 {
					mem.Kind, mem.Base = KindPtr, base
					mem.GoType = b.wantNamed(pointee, info.rem-1, "", "")
				} else {
					mem.Kind, mem.Size, mem.GoType = KindScalar, 8, "U64"
				}
				break
			}
			arr, ok := u.(*cbtf.Array)
			if !ok || arr.Nelems == 0 {
				continue
			}
			elem := cbtf.UnderlyingType(arr.Type)
			mem.Len = int(arr.Nelems)
			if size, signed, ok := intOf(elem); ok {
				st, err := scalarType(size, signed)
				if err != nil {
					continue
				}
				mem.Kind, mem.Size, mem.Signed, mem.GoType = KindArray, size, signed, st
			} else if _, ok := elem.(*cbtf.Pointer); ok {
				mem.Kind, mem.Size, mem.GoType = KindArray, 8, "U64"
			} else if isComposite(elem) {
				mem.Kind = KindArrayAcc
				mem.GoType = b.wantNamed(elem, info.rem, info.goName, m.Name)
			} else {
				continue
			}
		}
		used[mem.GoName] = true
		out = append(out, mem)
	}
	return out
}

func isComposite(t cbtf.Type) bool {
	switch t.(type) {
	case *cbtf.Struct, *cbtf.Union:
		return true
	}
	return false
}

func intOf(t cbtf.Type) (size int, signed, ok bool) {
	switch v := t.(type) {
	case *cbtf.Int:
		return int(v.Size), v.Encoding == cbtf.Signed, true
	case *cbtf.Enum:
		return int(v.Size), v.Signed, true
	}
	return 0, false, false
}

// event checks a //fentrygen:event type: fixed-size integers and byte
// arrays only, laid out by the Go compiler (the BPF side writes at Go's
// offsets).
func (b *builder) event(ts *ast.TypeSpec, a *eventAnnotation) {
	obj := b.in.Pkg.TypesInfo.Defs[ts.Name]
	if obj == nil {
		b.diags.errorf(b.pos(ts.Pos()), "event %s: no type information", ts.Name.Name)
		return
	}
	st, ok := obj.Type().Underlying().(*types.Struct)
	if !ok || ts.TypeParams != nil {
		b.diags.errorf(b.pos(ts.Name.Pos()), "event %s must be a struct type", ts.Name.Name)
		return
	}
	sizes := b.in.Pkg.TypesSizes
	e := Event{GoName: ts.Name.Name, Ringbuf: snake(ts.Name.Name), Size: uint64(sizes.Sizeof(st)), MapSize: a.Size}
	ok = true
	for i := range st.NumFields() {
		f := st.Field(i)
		switch u := f.Type().Underlying().(type) {
		case *types.Basic:
			if u.Info()&types.IsInteger == 0 && u.Kind() != types.Bool || u.Kind() == types.Int || u.Kind() == types.Uint || u.Kind() == types.Uintptr {
				b.diags.errorf(b.pos(f.Pos()), "event field %s.%s has type %s: want a sized integer (uint32, int64, ...) or a byte array", e.GoName, f.Name(), f.Type())
				ok = false
				continue
			}
			if f.Name() != "_" {
				e.Fields = append(e.Fields, EventField{Name: f.Name(), Kind: "int", Size: int(sizes.Sizeof(u))})
			}
		case *types.Array:
			elem, isBasic := u.Elem().Underlying().(*types.Basic)
			if !isBasic || (elem.Kind() != types.Uint8 && elem.Kind() != types.Int8) {
				b.diags.errorf(b.pos(f.Pos()), "event field %s.%s has type %s: arrays must be of bytes", e.GoName, f.Name(), f.Type())
				ok = false
				continue
			}
			if f.Name() != "_" {
				e.Fields = append(e.Fields, EventField{Name: f.Name(), Kind: "bytes", Size: int(u.Len())})
			}
		default:
			b.diags.errorf(b.pos(f.Pos()), "event field %s.%s has type %s: want a sized integer or a byte array (the kernel writes raw bytes)", e.GoName, f.Name(), f.Type())
			ok = false
		}
	}
	if e.Size > 256 {
		b.diags.errorf(b.pos(ts.Name.Pos()), "event %s is %d bytes: events are built on the 512-byte BPF stack, keep them at most 256", e.GoName, e.Size)
		ok = false
	}
	if ok {
		b.model.Events = append(b.model.Events, e)
	}
}

// generatedNames lists the package-level names the generated file declares.
func (b *builder) generatedNames() map[string]string {
	names := map[string]string{"Programs": "the list of probes", "Load": "the loader of all probes"}
	for _, p := range b.model.Probes {
		names[p.Context] = "probe " + p.Stub
		names[p.Context+"Program"] = "probe " + p.Stub
		names[p.Context+"Spec"] = "probe " + p.Stub
	}
	for _, s := range b.model.Structs {
		names[s.GoName] = s.CName
	}
	for _, e := range b.model.Events {
		names[e.GoName+"Out"] = "event " + e.GoName
		names["New"+e.GoName] = "event " + e.GoName
		names[e.GoName+"Reader"] = "event " + e.GoName
	}
	return names
}

// checkNames reports user declarations that clash with generated ones.
func (b *builder) checkNames() {
	scope := b.in.Pkg.Types.Scope()
	gen := b.generatedNames()
	for _, name := range slices.Sorted(maps.Keys(gen)) {
		obj := scope.Lookup(name)
		if obj == nil {
			continue
		}
		pos := b.pos(obj.Pos())
		if filepath.Clean(pos.Filename) == filepath.Clean(b.in.Output) {
			continue
		}
		b.diags.errorf(pos, "%s is declared here and generated for %s: rename it", name, gen[name])
	}
	ringbufs := map[string]string{}
	for _, e := range b.model.Events {
		if other, ok := ringbufs[e.Ringbuf]; ok {
			b.diags.errorf(token.Position{}, "events %s and %s both map to ring buffer %q: rename one", other, e.GoName, e.Ringbuf)
		}
		ringbufs[e.Ringbuf] = e.GoName
	}
	kernel := map[string]string{}
	for _, p := range b.model.Probes {
		name := runtime.KernelName(p.Stub)
		if other, ok := kernel[name]; ok {
			b.diags.errorf(p.Pos, "probes %s and %s have one kernel program name %q (15 bytes): rename one", other, p.Stub, name)
		}
		kernel[name] = p.Stub
	}
}

// filterLoadErrors keeps go/packages' errors except "undefined: X" for X
// the generated file declares: those come from the file being missing or
// stale, and generating it fixes them.
func (b *builder) filterLoadErrors() {
	gen := b.generatedNames()
	for _, d := range b.in.loadErrors {
		if name, ok := strings.CutPrefix(d.Message, "undefined: "); ok {
			if _, generated := gen[name]; generated || b.failed[name] {
				continue
			}
		}
		b.diags.list = append(b.diags.list, d)
	}
}
