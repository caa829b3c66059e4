package gen

import (
	"encoding/json"
	"fmt"
	"go/token"
	"strings"

	"github.com/fentrygen/fentrygen/runtime"
)

// Model is everything the generated file holds, as plain data. It prints
// as JSON (fentrygen -debug-model).
type Model struct {
	Package string `json:"package"`
	PkgPath string `json:"pkg_path"`
	// BTF names where the types came from (for the reader of -debug-model;
	// not written into the generated file).
	BTF     string     `json:"btf"`
	Probes  []Probe    `json:"probes"`
	Structs []Accessor `json:"structs"`
	Events  []Event    `json:"events"`
}

// Probe is one annotated stub.
type Probe struct {
	// Stub is the user's function; Context the generated type it takes.
	Stub      string       `json:"stub"`
	Context   string       `json:"context"`
	Kind      runtime.Kind `json:"kind"`
	Target    string       `json:"target"`
	Prototype string       `json:"prototype"`
	Sleepable bool         `json:"sleepable,omitempty"`
	Args      []Arg        `json:"args"`
	// Ret is the return value (fexit) or previous result (fmod_ret).
	Ret *Arg `json:"ret,omitempty"`
	// NumSlots is where the return value sits: ctx[NumSlots].
	NumSlots int            `json:"num_slots"`
	Pos      token.Position `json:"-"`
}

// Value kinds of arguments and members.
const (
	KindScalar   = "scalar"   // a sized integer
	KindPtr      = "ptr"      // a typed pointer: an accessor
	KindEmbedded = "embedded" // a struct or union member by value
	KindBitfield = "bitfield"
	KindArray    = "array"            // array of scalars, by index
	KindArrayAcc = "array_of_structs" // array of structs, by index
)

// Arg is an argument or the return value of a probe's function.
type Arg struct {
	CName  string `json:"c_name"`
	GoName string `json:"go_name"`
	CType  string `json:"c_type"`
	Slot   int    `json:"slot"`
	Kind   string `json:"kind"`
	// Scalar: Size, Signed and the runtime type (U32, S64...).
	Size   int    `json:"size,omitempty"`
	Signed bool   `json:"signed,omitempty"`
	GoType string `json:"go_type"`
	// Ptr: the C struct the pointer's paths start from (Base) and the one
	// it is viewed as (Cast, "" when not cast).
	Base string `json:"base,omitempty"`
	Cast string `json:"cast,omitempty"`
}

// Accessor is a generated type with one method per member of a C struct or
// union, shared by every probe that reaches it.
type Accessor struct {
	GoName string `json:"go_name"`
	// CName is "struct sock", "union {...} (in sock_common)".
	CName   string   `json:"c_name"`
	Members []Member `json:"members"`
}

// Member is one method of an accessor.
type Member struct {
	CName  string `json:"c_name"`
	GoName string `json:"go_name"`
	CType  string `json:"c_type"`
	Kind   string `json:"kind"`
	Size   int    `json:"size,omitempty"`
	Signed bool   `json:"signed,omitempty"`
	// GoType is the runtime type of scalars or the accessor's name.
	GoType string `json:"go_type"`
	// Base is the C struct a dereferenced pointer leads to.
	Base string `json:"base,omitempty"`
	Len  int    `json:"len,omitempty"`
}

// Event is a user struct written by probes and read back in Go.
type Event struct {
	GoName  string       `json:"go_name"`
	Ringbuf string       `json:"ringbuf"`
	Size    uint64       `json:"size"`
	MapSize uint32       `json:"map_size"`
	Fields  []EventField `json:"fields"`
}

// EventField is one settable field of an event.
type EventField struct {
	Name string `json:"name"`
	// Kind is "int" or "bytes" (a byte array: strings and comm).
	Kind string `json:"kind"`
	Size int    `json:"size"`
}

// JSON renders the model for -debug-model.
func (m *Model) JSON() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return []byte(err.Error())
	}
	return append(b, '\n')
}

// goName turns a C identifier into an exported Go one: "__sk_common" ->
// "SkCommon", "skc_daddr" -> "SkcDaddr".
func goName(c string) string {
	var b strings.Builder
	for _, part := range strings.Split(c, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	if b.Len() == 0 {
		return "X"
	}
	return b.String()
}

// scalarType is the runtime type of an integer of size bytes.
func scalarType(size int, signed bool) (string, error) {
	switch size {
	case 1, 2, 4, 8:
	default:
		return "", fmt.Errorf("%d-byte integers are not supported", size)
	}
	if signed {
		return fmt.Sprintf("S%d", size*8), nil
	}
	return fmt.Sprintf("U%d", size*8), nil
}

// snake turns a Go name into a kernel object name: "ConnectEvent" ->
// "connect_event", at most 15 bytes.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > 15 {
		out = out[:15]
	}
	return strings.TrimRight(out, "_")
}
