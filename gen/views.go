package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"sort"
)

// MaxStackView bounds a view built on the 512-byte BPF stack (events, and
// keys and values put together before an update): half of it, so the
// program keeps room for its own temporaries.
const MaxStackView = 256

// viewReserved are names a view type already has: its embedded ViewOf and
// the View inside it, and an event's Output.
var viewReserved = map[string]bool{"ViewOf": true, "View": true, "Output": true}

// views makes a view of each event type.
func (b *builder) views(f *found) {
	for _, e := range f.events {
		v := b.view(e.spec.Name, e.spec, e.ann.Pos)
		if v == nil {
			continue
		}
		if len(v.Fields) == 0 {
			b.diags.errorf(b.pos(e.spec.Name.Pos()), "event %s has no fields to set", v.Struct)
			continue
		}
		if v.Size > MaxStackView {
			b.diags.errorf(b.pos(e.spec.Name.Pos()), "event %s is %d bytes: events are built on the 512-byte BPF stack, keep them at most %d", v.Struct, v.Size, MaxStackView)
			continue
		}
		v.Event = &Event{RingVar: "fentrygenRing" + v.Struct, Map: v.Struct, Size: e.ann.Size, Reader: v.Struct + "Reader", Pos: Pos{e.ann.Pos}}
	}
	sort.Slice(b.model.Views, func(i, j int) bool { return b.model.Views[i].Struct < b.model.Views[j].Struct })
}

// viewOf returns the view of the struct called name (for a map's XView
// element), making it on first use; nil after reporting an error at pos.
func (b *builder) viewOf(name string, pos token.Position) *View {
	for _, v := range b.model.Views {
		if v.Struct == name {
			return v
		}
	}
	obj, ok := b.in.Types.Scope().Lookup(name).(*types.TypeName)
	if !ok || obj.Pkg() != b.in.Types {
		b.diags.errorf(pos, "%sView is the view of a struct %s, which this package does not declare", name, name)
		return nil
	}
	spec := b.typeSpec(obj)
	if spec == nil {
		b.diags.errorf(pos, "%s is not declared by a type spec of this package", name)
		return nil
	}
	v := b.view(spec.Name, spec, pos)
	sort.Slice(b.model.Views, func(i, j int) bool { return b.model.Views[i].Struct < b.model.Views[j].Struct })
	return v
}

// typeSpec finds the declaration of obj.
func (b *builder) typeSpec(obj *types.TypeName) *ast.TypeSpec {
	for _, f := range b.in.Files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				if ts := s.(*ast.TypeSpec); b.in.Info.Defs[ts.Name] == obj {
					return ts
				}
			}
		}
	}
	return nil
}

// view checks a struct programs write or read: fixed-size integers and
// byte arrays only, laid out by the Go compiler (programs use Go's
// offsets), and names the methods of its fields.
func (b *builder) view(name *ast.Ident, ts *ast.TypeSpec, use token.Position) *View {
	obj := b.in.Info.Defs[name]
	if obj == nil {
		b.diags.errorf(b.pos(name.Pos()), "%s: no type information", name.Name)
		return nil
	}
	st, ok := obj.Type().Underlying().(*types.Struct)
	if !ok || ts.TypeParams != nil {
		b.diags.errorf(b.pos(name.Pos()), "%s must be a struct type: programs see it as plain memory", name.Name)
		return nil
	}
	v := &View{Struct: name.Name, GoName: name.Name + "View", New: "New" + name.Name + "View", Size: b.in.conf.Sizes.Sizeof(st), Pos: Pos{b.pos(name.Pos())}}
	methods := map[string]string{}
	for r := range viewReserved {
		methods[r] = "the view type itself"
	}
	ok = true
	claim := func(f *types.Var, method string) {
		if other, taken := methods[method]; taken {
			b.diags.errorf(b.pos(f.Pos()), "field %s.%s needs the method %s, which %s has: rename the field", v.Struct, f.Name(), method, other)
			ok = false
			return
		}
		methods[method] = "field " + f.Name()
	}
	for i := range st.NumFields() {
		f := st.Field(i)
		vf := &ViewField{Name: f.Name(), Pos: Pos{b.pos(f.Pos())}}
		switch u := f.Type().Underlying().(type) {
		case *types.Basic:
			goType, sized := sizedInt(u)
			if !sized {
				b.diags.errorf(b.pos(f.Pos()), "field %s.%s has type %s: want a sized integer (uint32, int64, ...) or a byte array", v.Struct, f.Name(), f.Type())
				ok = false
				continue
			}
			vf.Kind, vf.GoType, vf.Size = FieldInt, goType, int(b.in.conf.Sizes.Sizeof(u))
		case *types.Array:
			elem, isBasic := u.Elem().Underlying().(*types.Basic)
			if !isBasic || (elem.Kind() != types.Uint8 && elem.Kind() != types.Int8) {
				b.diags.errorf(b.pos(f.Pos()), "field %s.%s has type %s: arrays must be of bytes", v.Struct, f.Name(), f.Type())
				ok = false
				continue
			}
			vf.Kind, vf.Size = FieldBytes, int(u.Len())
		default:
			b.diags.errorf(b.pos(f.Pos()), "field %s.%s has type %s: want a sized integer or a byte array (the kernel writes raw bytes)", v.Struct, f.Name(), f.Type())
			ok = false
			continue
		}
		if f.Name() == "_" {
			continue
		}
		if !f.Exported() {
			b.diags.errorf(b.pos(f.Pos()), "field %s.%s is unexported: the view's methods take the field's name, so export it (or name padding _)", v.Struct, f.Name())
			ok = false
			continue
		}
		vf.Get, vf.Set = f.Name(), "Set"+f.Name()
		claim(f, vf.Get)
		claim(f, vf.Set)
		if vf.Kind == FieldInt && (vf.Size == 4 || vf.Size == 8) {
			vf.Add = "Add" + f.Name()
			claim(f, vf.Add)
		}
		if vf.Kind == FieldBytes {
			vf.FromString, vf.FromKernel = vf.Set+"FromString", vf.Set+"FromKernel"
			claim(f, vf.FromString)
			claim(f, vf.FromKernel)
			if vf.Size == 16 {
				vf.FromCurrent = vf.Set + "FromCurrent"
				claim(f, vf.FromCurrent)
			}
		}
		v.Fields = append(v.Fields, vf)
	}
	if !ok {
		return nil
	}
	b.model.Views = append(b.model.Views, v)
	return v
}

// sizedInt is the Go type of a sized integer basic type, or false (int,
// uint, uintptr, bool, floats...).
func sizedInt(t *types.Basic) (string, bool) {
	name, ok := map[types.BasicKind]string{
		types.Int8: "int8", types.Int16: "int16", types.Int32: "int32", types.Int64: "int64",
		types.Uint8: "uint8", types.Uint16: "uint16", types.Uint32: "uint32", types.Uint64: "uint64",
	}[t.Kind()]
	return name, ok
}
