package gen

import (
	"go/token"
	"sort"

	"github.com/fentrygen/fentrygen/runtime"
)

// owner is what a generated name is generated for, and where that is
// declared.
type owner struct {
	what string
	pos  token.Position
}

// packageNames lists the package-level names the generated file declares,
// each with its owner.
func (b *builder) packageNames() map[string][]owner {
	names := map[string][]owner{}
	add := func(name, what string, pos token.Position) {
		names[name] = append(names[name], owner{what, pos})
	}
	first := token.Position{}
	if len(b.model.Probes) > 0 {
		first = b.model.Probes[0].Pos.Position
	}
	for _, fixed := range []string{"Programs", "Load", "Objects"} {
		add(fixed, "the package's loader", first)
	}
	for _, p := range b.model.Probes {
		what := "probe " + p.Stub
		add(p.Context, what+"'s context type", p.Pos.Position)
		add(p.ProgramFunc, what+"'s builder", p.Pos.Position)
		add(p.SpecFunc, what+"'s spec function", p.Pos.Position)
		if p.Session != nil {
			add(p.Session.Entry, what+"'s entry part type", p.Pos.Position)
			add(p.Session.Exit, what+"'s exit part type", p.Pos.Position)
		}
	}
	for _, v := range b.model.Views {
		add(v.GoName, "struct "+v.Struct+"'s view", v.Pos.Position)
		add(v.New, "struct "+v.Struct+"'s view constructor", v.Pos.Position)
		if v.Event != nil {
			add(v.Event.RingVar, "event "+v.Struct+"'s ring buffer", v.Pos.Position)
		}
	}
	for _, acc := range b.acc.order {
		add(acc.goName, acc.cName+"'s accessor", first)
	}
	return names
}

// checkNames reports generated names that clash: with each other, with
// the package's own declarations, and among the fields of Objects.
func (b *builder) checkNames() {
	scope := b.in.Types.Scope()
	names := b.packageNames()
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		owners := names[name]
		if len(owners) > 1 {
			b.diags.errorf(owners[1].pos, "%s would be generated for both %s and %s: rename one", name, owners[0].what, owners[1].what)
			continue
		}
		if obj := scope.Lookup(name); obj != nil && obj.Pos().IsValid() {
			b.diags.errorf(b.pos(obj.Pos()), "%s is declared here and generated for %s: rename it", name, owners[0].what)
		}
	}
	fields := map[string]owner{}
	claim := func(name, what string, pos token.Position) {
		if objectsReserved[name] {
			b.diags.errorf(pos, "%s would be a field of Objects, which has %s from runtime.Objects: rename the %s", name, name, what)
			return
		}
		if other, ok := fields[name]; ok {
			b.diags.errorf(pos, "%s would be the Objects field of both %s and %s: rename one", name, other.what, what)
			return
		}
		fields[name] = owner{what, pos}
	}
	for _, p := range b.model.Probes {
		claim(p.Field, "probe "+p.Stub, p.Pos.Position)
	}
	for _, m := range b.model.Maps {
		claim(m.Field, "map "+m.Var, m.Pos.Position)
	}
	for _, v := range b.model.Views {
		if v.Event != nil {
			claim(v.Event.Reader, "event "+v.Struct, v.Pos.Position)
		}
	}
	kernel := map[string]string{}
	for _, p := range b.model.Probes {
		name := runtime.KernelName(p.Stub)
		if other, ok := kernel[name]; ok {
			b.diags.errorf(p.Pos.Position, "probes %s and %s have one kernel program name %q (15 bytes): rename one", other, p.Stub, name)
		}
		kernel[name] = p.Stub
	}
}

// checkAccessorNames reports accessors found while settling whose names
// clash with the package's declarations or other generated names.
func (b *builder) checkAccessorNames(known int) {
	scope := b.in.Types.Scope()
	names := b.packageNames()
	for _, acc := range b.acc.order[known:] {
		owners := names[acc.goName]
		if len(owners) > 1 {
			b.diags.errorf(owners[0].pos, "%s would be generated for both %s and %s: rename one", acc.goName, owners[0].what, owners[1].what)
			continue
		}
		if obj := scope.Lookup(acc.goName); obj != nil && obj.Pos().IsValid() {
			b.diags.errorf(b.pos(obj.Pos()), "%s is declared here and generated as %s's accessor: rename it", acc.goName, acc.cName)
		}
	}
}
