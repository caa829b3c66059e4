package gen

import (
	"go/token"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/fentrygen/fentrygen/runtime"
)

// isCIdent reports whether s is a plain C identifier: ASCII letters, digits
// and underscores, not starting with a digit. Only such BTF names become
// Go identifiers; anything else is refused, so a corrupt or hostile BTF
// file cannot put code into the generated file.
func isCIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// goName turns a C identifier into an exported Go one: "__sk_common" ->
// "SkCommon", "skc_daddr" -> "SkcDaddr". The result is a Go identifier for
// every C identifier (a leading digit after underscores gets an X).
func goName(c string) string {
	var b strings.Builder
	for _, part := range strings.Split(c, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	out := b.String()
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "X" + out
	}
	if !token.IsIdentifier(out) || token.IsKeyword(out) {
		return "X" + out
	}
	return out
}

// leadingUnderscores counts the underscores a C name starts with: kernel
// internals (__d_name) have more than the names users know (d_name).
func leadingUnderscores(c string) int {
	return len(c) - len(strings.TrimLeft(c, "_"))
}

// uniqueNames gives each C name an exported Go name that does not depend
// on the names' order: the plain goName goes to the name with the fewest
// leading underscores (then the smallest), and the others get one "_" per
// leading underscore (at least one), then a number, until unique; reserved
// names are taken from the start. "__d_name" next to "d_name" is DName__.
// It takes linear time however many names collide.
func uniqueNames(cnames []string, reserved map[string]bool) map[string]string {
	sorted := append([]string(nil), cnames...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if la, lb := leadingUnderscores(a), leadingUnderscores(b); la != lb {
			return la < lb
		}
		return a < b
	})
	taken := map[string]bool{}
	for r := range reserved {
		taken[r] = true
	}
	next := map[string]int{}
	out := map[string]string{}
	for _, c := range sorted {
		if _, done := out[c]; done {
			continue
		}
		name := goName(c)
		if taken[name] {
			name += strings.Repeat("_", max(1, leadingUnderscores(c)))
		}
		if taken[name] {
			base := name
			n := max(next[base], 2)
			for taken[base+strconv.Itoa(n)] {
				n++
			}
			next[base] = n + 1
			name = base + strconv.Itoa(n)
		}
		taken[name] = true
		out[c] = name
	}
	return out
}

// ContextName is the generated context type of a stub: its name with the
// first letter upper-cased (onConnect -> OnConnect).
func ContextName(stub string) string { return strings.ToUpper(stub[:1]) + stub[1:] }

// exported upper-cases the first letter of a Go identifier.
func exported(name string) string { return strings.ToUpper(name[:1]) + name[1:] }

// contextReserved are the names a context type gets from the *runtime.Probe
// it embeds: an argument whose Go name is one of them is suffixed "Arg".
var contextReserved = map[string]bool{
	"Probe": true, "If": true, "IfElse": true, "Exit": true, "Return": true,
	"FilterTgid": true, "FilterTid": true, "FilterComm": true, "Program": true, "Info": true,
	"Ret": true, "Task": true,
}

// sessionReserved are the names an fsession's context types add to
// contextReserved.
var sessionReserved = map[string]bool{"AtEntry": true, "AtExit": true, "SetCookie": true, "Cookie": true}

// reservedFor is contextReserved for the context types of kind.
func reservedFor(kind runtime.Kind, multi bool) map[string]bool {
	switch {
	case multi:
		out := maps.Clone(contextReserved)
		maps.Copy(out, multiReserved)
		return out
	case kind == runtime.Fsession:
		out := maps.Clone(contextReserved)
		maps.Copy(out, sessionReserved)
		return out
	}
	return contextReserved
}

// multiReserved are the methods the context of a probe on several
// functions has.
var multiReserved = map[string]bool{"FuncIndex": true, "FuncIP": true}

// objectsReserved are the names the generated Objects type gets from the
// *runtime.Objects it embeds.
var objectsReserved = map[string]bool{
	"Objects": true, "Target": true, "Collection": true, "Programs": true, "Maps": true,
	"Links": true, "Close": true, "Map": true,
}

// scalarGoType is the Go integer type of a C integer of size bytes.
func scalarGoType(size int, signed bool) (string, bool) {
	t, ok := map[int]string{1: "int8", 2: "int16", 4: "int32", 8: "int64"}[size]
	if !ok {
		return "", false
	}
	if !signed {
		t = "u" + t
	}
	return t, true
}

// numAlias is the runtime alias of Num[goType]: uint32 -> U32.
func numAlias(goType string) string {
	return map[string]string{
		"uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64",
		"int8": "S8", "int16": "S16", "int32": "S32", "int64": "S64",
	}[goType]
}
