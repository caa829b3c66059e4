package gen

import (
	"fmt"
	"regexp"
)

// undefinedMember matches go/types' message for a selector that names no
// field or method: "e.Ret undefined (type *OnReadEntry has no field or
// method Ret)".
var undefinedMember = regexp.MustCompile(`^.+\.(\w+) undefined \(type \*?(\w+) has no field or method (\w+)`)

// sessionHint explains a type error on an fsession's context types: a
// member that belongs to the other part (the return value and the cookie
// are read at the return, the cookie set at the call) or to the
// annotation (ret). It returns "" for other errors.
func (b *builder) sessionHint(msg string) string {
	m := undefinedMember.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	typ, name := m[2], m[3]
	for _, p := range b.model.Probes {
		s := p.Session
		if s == nil || (typ != p.Context && typ != s.Entry && typ != s.Exit) {
			continue
		}
		atExit := fmt.Sprintf("p.AtExit(func(x *%s) {...})", s.Exit)
		switch {
		case name == "Ret" && p.Ret == nil:
			return fmt.Sprintf("the return value needs ret in the annotation (//fsession:%s ... ret), and is read at the return, in %s", p.Target, atExit)
		case name == "Ret" && typ != s.Exit:
			return "the return value exists only at the return: read it in " + atExit
		case name == "Cookie" && typ != s.Exit:
			return "the cookie is read at the return, in " + atExit + "; the entry part sets it (SetCookie)"
		case name == "SetCookie" && typ != s.Entry:
			return fmt.Sprintf("the cookie is set at the call, in p.AtEntry(func(e *%s) {...}); the exit part reads it (Cookie)", s.Entry)
		case (name == "AtEntry" || name == "AtExit") && typ != p.Context:
			return fmt.Sprintf("parts do not nest: call %s on the probe's %s, outside the other part", name, p.Context)
		}
	}
	return ""
}
