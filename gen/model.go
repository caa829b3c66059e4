package gen

import (
	"encoding/json"
	"fmt"
	"go/token"
	"path/filepath"
	"strings"

	"github.com/fentrygen/fentrygen/runtime"
)

// Model is everything the generated file holds, as plain data: every
// generated identifier is decided here, and emit only renders it. It
// prints as JSON (fentrygen -debug-model).
type Model struct {
	Package string `json:"package"`
	PkgPath string `json:"pkg_path"`
	// BTF names where the types came from (for the reader of -debug-model;
	// not written into the generated file).
	BTF string `json:"btf"`
	// Constraint is the build constraint of the files the probes are in,
	// carried into the generated file ("" for none).
	Constraint string      `json:"constraint,omitempty"`
	Probes     []*Probe    `json:"probes"`
	Accessors  []*Accessor `json:"accessors"`
	Views      []*View     `json:"views"`
	Maps       []*Map      `json:"maps"`
}

// Pos is a source position that prints as file:line:col.
type Pos struct{ token.Position }

// MarshalText renders the position.
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Short renders the position with the file's base name.
func (p Pos) Short() string {
	short := p.Position
	short.Filename = filepath.Base(short.Filename)
	return short.String()
}

// Probe is one annotated stub.
type Probe struct {
	// Stub is the user's function; Context the generated type it takes;
	// ProgramFunc and SpecFunc build it; Field is its program in Objects.
	Stub        string       `json:"stub"`
	Context     string       `json:"context"`
	ProgramFunc string       `json:"program_func"`
	SpecFunc    string       `json:"spec_func"`
	Field       string       `json:"field"`
	Kind        runtime.Kind `json:"kind"`
	Target      string       `json:"target"`
	// Module is the kernel module whose function Target is, "" for
	// vmlinux's: named in the annotation, or found there.
	Module    string `json:"module,omitempty"`
	Prototype string `json:"prototype"`
	Sleepable bool   `json:"sleepable,omitempty"`
	Args      []*Arg `json:"args"`
	// Ret is the return value (fexit) or previous result (fmod_ret).
	Ret *Arg `json:"ret,omitempty"`
	// Task is the current task_struct, when the annotation asks for it.
	Task *Arg `json:"task,omitempty"`
	// NumSlots is where the return value sits: ctx[NumSlots].
	NumSlots int `json:"num_slots"`
	// Session is set for fsession probes.
	Session *Session `json:"session,omitempty"`
	// Multi is set for probes on several functions.
	Multi *Multi `json:"multi,omitempty"`
	Pos   Pos    `json:"pos"`
	// ArgsUsed (C names, "ret" for the return value) and Uses are what
	// the stub reads, through the functions it calls: what other kernels
	// must have (fentrygen check).
	ArgsUsed []string `json:"args_used,omitempty"`
	Uses     []Use    `json:"uses,omitempty"`
}

// Session is what an fsession probe has besides its context: the types
// its entry and exit parts see, and its cookie.
type Session struct {
	// Entry and Exit are the context types of the parts (OnReadEntry,
	// OnReadExit).
	Entry string `json:"entry"`
	Exit  string `json:"exit"`
	// Cookie is the cookie's Go integer type (uint64), CookieC its
	// annotation name (u64).
	Cookie  string `json:"cookie"`
	CookieC string `json:"cookie_c"`
}

// Multi is what a probe on several functions has besides its context:
// the functions, and the context's methods that tell which one runs.
type Multi struct {
	// Targets are the names and glob patterns as the annotation lists
	// them: what Load resolves on the kernel it runs on.
	Targets []string `json:"targets"`
	// Funcs are the functions they matched in the BTF of generation,
	// sorted (documentation: the kernel decides).
	Funcs []string `json:"funcs"`
	// FuncIndex and FuncIP are the context's methods for the traced
	// function's position in the list Load attached to and its address.
	FuncIndex string `json:"func_index"`
	FuncIP    string `json:"func_ip"`
}

// ValueKind is how an argument or member is read.
type ValueKind int

const (
	// ValueScalar is an integer: a Num of GoType.
	ValueScalar ValueKind = iota + 1
	// ValuePtr is a pointer to a struct or union: an accessor.
	ValuePtr
	// ValueEmbedded is a struct or union member held by value.
	ValueEmbedded
	// ValueArray is an array of integers, read by index.
	ValueArray
	// ValueArrayAcc is an array of structs, one accessor per index.
	ValueArrayAcc
)

var valueKindNames = map[ValueKind]string{ValueScalar: "scalar", ValuePtr: "ptr", ValueEmbedded: "embedded", ValueArray: "array", ValueArrayAcc: "array_of_structs"}

func (k ValueKind) String() string {
	if n, ok := valueKindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("ValueKind(%d)", int(k))
}

// MarshalText renders the kind's name.
func (k ValueKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Arg is an argument, the return value or the current task of a probe.
type Arg struct {
	CName  string    `json:"c_name"`
	GoName string    `json:"go_name"`
	CType  string    `json:"c_type"`
	Slot   int       `json:"slot"`
	Kind   ValueKind `json:"kind"`
	// GoType is the Go integer type of a scalar (uint32...) or the accessor
	// of a pointer.
	GoType string `json:"go_type"`
	// Base is the C struct a pointer's paths start from; Cast the one it is
	// viewed as ("" when not cast).
	Base string `json:"base,omitempty"`
	Cast string `json:"cast,omitempty"`
	Pos  Pos    `json:"pos"`
}

// Accessor is a generated type with one method per member of a C struct or
// union that the stubs read, shared by every probe that reaches it.
type Accessor struct {
	GoName string `json:"go_name"`
	// CName is "struct sock", "atomic_t", "union {...} (in sock_common)".
	CName   string    `json:"c_name"`
	Members []*Member `json:"members"`
	// Pos is where the stubs first reach it: the argument, or the use of
	// the member that leads to it.
	Pos Pos `json:"pos"`
}

// Member is one method of an accessor.
type Member struct {
	CName  string    `json:"c_name"`
	GoName string    `json:"go_name"`
	CType  string    `json:"c_type"`
	Kind   ValueKind `json:"kind"`
	// GoType is the Go integer type of scalars or the accessor's name.
	GoType string `json:"go_type"`
	// Base is the C struct a dereferenced pointer leads to.
	Base string `json:"base,omitempty"`
	Len  int    `json:"len,omitempty"`
	// Pos is the stubs' first use of it; the accessor's position for a
	// member kept by depth= and not used.
	Pos Pos `json:"pos"`
}

// View is one of the user's structs as programs see it: an event, a map key
// or value. Its methods read and write the struct's fields.
type View struct {
	// Struct is the user's type; GoName the view type; New its
	// constructor on the stack.
	Struct string `json:"struct"`
	GoName string `json:"go_name"`
	New    string `json:"new"`
	Size   int64  `json:"size"`
	// Event is set for //fentrygen:event types.
	Event  *Event       `json:"event,omitempty"`
	Fields []*ViewField `json:"fields"`
	Pos    Pos          `json:"pos"`
}

// Event is the ring buffer an event type is sent to.
type Event struct {
	// RingVar is the package variable declaring the ring; Map its name in
	// the collection; Reader the field of Objects that reads it.
	RingVar string `json:"ring_var"`
	Map     string `json:"map"`
	Size    uint32 `json:"size"`
	Reader  string `json:"reader"`
	// Pos is the //fentrygen:event annotation's.
	Pos Pos `json:"pos"`
}

// FieldKind is what a view field holds.
type FieldKind int

const (
	// FieldInt is a sized integer.
	FieldInt FieldKind = iota + 1
	// FieldBytes is a byte array: strings, comm, addresses.
	FieldBytes
)

func (k FieldKind) String() string {
	switch k {
	case FieldInt:
		return "int"
	case FieldBytes:
		return "bytes"
	}
	return fmt.Sprintf("FieldKind(%d)", int(k))
}

// MarshalText renders the kind's name.
func (k FieldKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ViewField is one field of a view and the methods that reach it.
type ViewField struct {
	Name string    `json:"name"`
	Kind FieldKind `json:"kind"`
	// GoType is the Go integer type of an int field.
	GoType string `json:"go_type,omitempty"`
	Size   int    `json:"size"`
	// Methods: Get reads (ints) or is the field as bytes; Set stores (or
	// copies bytes); Add adds atomically (4- and 8-byte ints); FromString,
	// FromKernel and FromCurrent fill byte fields ("" when not generated).
	Get         string `json:"get"`
	Set         string `json:"set"`
	Add         string `json:"add,omitempty"`
	FromString  string `json:"from_string,omitempty"`
	FromKernel  string `json:"from_kernel,omitempty"`
	FromCurrent string `json:"from_current,omitempty"`
	// Pos is the field's declaration.
	Pos Pos `json:"pos"`
}

// MapKind is the runtime type a map variable is declared with.
type MapKind int

const (
	MapHash MapKind = iota + 1
	MapLRUHash
	MapPerCPUHash
	MapArray
	MapPerCPUArray
	MapGlobal
	MapLog2Hist
	MapLinearHist
	MapLog2HistBy
	MapLinearHistBy
	MapStackTrace
)

// mapKinds maps the runtime type names to kinds.
var mapKinds = map[string]MapKind{
	"Hash": MapHash, "LRUHash": MapLRUHash, "PerCPUHash": MapPerCPUHash,
	"Array": MapArray, "PerCPUArray": MapPerCPUArray, "Global": MapGlobal,
	"Log2Hist": MapLog2Hist, "LinearHist": MapLinearHist,
	"Log2HistBy": MapLog2HistBy, "LinearHistBy": MapLinearHistBy,
	"StackTrace": MapStackTrace,
}

// mapKindList names the runtime's map types in declaration order, for
// messages.
func mapKindList() string {
	names := make([]string, 0, len(mapKinds))
	for k := MapHash; k <= MapStackTrace; k++ {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

func (k MapKind) String() string {
	for name, kind := range mapKinds {
		if kind == k {
			return name
		}
	}
	return fmt.Sprintf("MapKind(%d)", int(k))
}

// MarshalText renders the kind's runtime type name.
func (k MapKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k MapKind) hist() bool {
	return k == MapLog2Hist || k == MapLinearHist || k == MapLog2HistBy || k == MapLinearHistBy
}

func (k MapKind) keyed() bool {
	switch k {
	case MapHash, MapLRUHash, MapPerCPUHash, MapLog2HistBy, MapLinearHistBy:
		return true
	}
	return false
}

// Map is a package-level map variable.
type Map struct {
	// Var is the user's variable and the map's name in the collection;
	// Field is its handle in Objects.
	Var   string  `json:"var"`
	Field string  `json:"field"`
	Kind  MapKind `json:"kind"`
	// Key and Value are the element types (Key nil for arrays, globals and
	// unkeyed histograms, Value nil for histograms).
	Key   *ElemType `json:"key,omitempty"`
	Value *ElemType `json:"value,omitempty"`
	// MaxEntries sizes hash maps and arrays and bounds keyed histograms.
	MaxEntries uint32 `json:"max_entries,omitempty"`
	// Slots, Base and Step shape histograms.
	Slots int    `json:"slots,omitempty"`
	Base  uint64 `json:"base,omitempty"`
	Step  uint64 `json:"step,omitempty"`
	Pos   Pos    `json:"pos"`
}

// ElemType is a map's key or value type on both sides.
type ElemType struct {
	// Go is the user-space type (uint32, Piddata); View is set when the
	// kernel side is a generated view (PiddataView), else the kernel side is
	// the Num alias of Go.
	Go   string `json:"go"`
	View string `json:"view,omitempty"`
}

// JSON renders the model for -debug-model.
func (m *Model) JSON() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return []byte(err.Error())
	}
	return append(b, '\n')
}
