package btf

import (
	"errors"
	"fmt"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// MaxSlots is MAX_BPF_FUNC_ARGS: the most u64 ctx slots a traced function's
// arguments may occupy.
const MaxSlots = 12

// MaxSlotsX86Pre66 is how many argument slots the x86-64 BPF trampoline
// accepted before Linux 6.6.
const MaxSlotsX86Pre66 = 6

// Errors that classify why a function could not be resolved. Use errors.Is.
var (
	ErrNotFound    = errors.New("not found in BTF")
	ErrNotFunction = errors.New("not a function")
	ErrAmbiguous   = errors.New("ambiguous: several functions share the name")
	ErrVariadic    = errors.New("variadic")
	ErrArgTooLarge = errors.New("struct or union argument larger than 16 bytes")
	ErrTooManyArgs = errors.New("arguments need more than 12 ctx slots")
	ErrUnknownArg  = errors.New("unknown argument")
)

// Kind says how a value sits in its ctx slot(s).
type Kind int

const (
	// KindInt is an integer, enum or bool: one slot, narrowed on load.
	KindInt Kind = iota
	// KindPointer is a pointer: one slot, a full u64.
	KindPointer
	// KindAggregate is a struct or union passed by value: ceil(size/8) slots.
	KindAggregate
	// KindVoid is the void return type: no value.
	KindVoid
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "int"
	case KindPointer:
		return "pointer"
	case KindAggregate:
		return "aggregate"
	case KindVoid:
		return "void"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Value describes one argument or the return value of a function.
type Value struct {
	// Name is the C parameter name ("" for the return value).
	Name string
	// Index is the argument's position, counting from 0 (-1 for the return).
	Index int
	// Type is the BTF type as declared (typedefs and qualifiers kept).
	Type cbtf.Type
	// CType is Type written as C would ("struct sock *", "u32").
	CType string
	// Kind, Size and Signed describe the underlying type.
	Kind   Kind
	Size   int
	Signed bool
	// Slot is the first ctx slot; Slots how many it takes.
	Slot, Slots int
}

// Func is a kernel function with its argument layout resolved.
type Func struct {
	Name    string
	Linkage cbtf.FuncLinkage
	BTF     *cbtf.Func
	Params  []Value
	Return  Value
	// NumSlots is the number of ctx slots the arguments take; the fexit
	// return value (and fmod_ret's previous result) lives in ctx[NumSlots].
	NumSlots int
}

// ResolveFunc looks up name in spec and lays out its arguments. Errors wrap
// ErrNotFound (with near-miss names), ErrNotFunction, ErrAmbiguous,
// ErrVariadic, ErrArgTooLarge or ErrTooManyArgs.
func ResolveFunc(spec Types, name string) (*Func, error) {
	types, err := spec.AnyTypesByName(name)
	if errors.Is(err, cbtf.ErrNotFound) {
		return nil, notFound(spec, name)
	}
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", name, err)
	}
	var funcs []*cbtf.Func
	var other []string
	for _, t := range types {
		if f, ok := t.(*cbtf.Func); ok {
			funcs = append(funcs, f)
		} else {
			other = append(other, kindOf(t))
		}
	}
	switch {
	case len(funcs) == 0:
		return nil, fmt.Errorf("%s is a %s, %w", name, strings.Join(other, " and a "), ErrNotFunction)
	case len(funcs) > 1:
		return nil, fmt.Errorf("%s: %w (%d definitions; the kernel cannot tell which one to attach to)", name, ErrAmbiguous, len(funcs))
	}
	return layout(funcs[0])
}

func notFound(spec Types, name string) error {
	near := NearNames(spec, name, 3, func(t cbtf.Type) bool { _, ok := t.(*cbtf.Func); return ok })
	if len(near) == 0 {
		return fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	return fmt.Errorf("function %s: %w (did you mean %s?)", name, ErrNotFound, strings.Join(near, ", "))
}

func layout(fn *cbtf.Func) (*Func, error) {
	proto, ok := fn.Type.(*cbtf.FuncProto)
	if !ok {
		return nil, fmt.Errorf("function %s has no prototype", fn.Name)
	}
	return layoutProto(&Func{Name: fn.Name, Linkage: fn.Linkage, BTF: fn}, proto.Params, proto.Return)
}

// layoutProto lays params and ret out in ctx slots into out.
func layoutProto(out *Func, params []cbtf.FuncParam, retType cbtf.Type) (*Func, error) {
	fn := out
	slot := 0
	for i, p := range params {
		if _, void := p.Type.(*cbtf.Void); void || p.Type == nil {
			return nil, fmt.Errorf("function %s: %w", fn.Name, ErrVariadic)
		}
		if p.Name != "" && !IsCIdent(p.Name) {
			// Argument names become Go identifiers and annotation text.
			return nil, fmt.Errorf("function %s argument %d: name %q is %w", fn.Name, i, p.Name, ErrBadName)
		}
		v, err := describe(p.Type)
		if err != nil {
			return nil, fmt.Errorf("function %s argument %s: %w", fn.Name, p.Name, err)
		}
		v.Name, v.Index, v.Slot = p.Name, i, slot
		slot += v.Slots
		out.Params = append(out.Params, v)
	}
	out.NumSlots = slot
	if slot > MaxSlots {
		return nil, fmt.Errorf("function %s: %w (%d)", fn.Name, ErrTooManyArgs, slot)
	}
	ret, err := describe(retType)
	if err != nil {
		return nil, fmt.Errorf("function %s return value: %w", fn.Name, err)
	}
	ret.Index, ret.Slot = -1, slot
	out.Return = ret
	return out, nil
}

// describe classifies a type as an argument or return value.
func describe(t cbtf.Type) (Value, error) {
	v := Value{Type: t, CType: CType(t), Slots: 1}
	u, err := underlying(t)
	if err != nil {
		return v, err
	}
	switch u := u.(type) {
	case *cbtf.Void:
		v.Kind, v.Slots = KindVoid, 0
	case *cbtf.Pointer:
		v.Kind, v.Size = KindPointer, 8
	case *cbtf.Int:
		v.Kind, v.Size, v.Signed = KindInt, int(u.Size), u.Encoding == cbtf.Signed
	case *cbtf.Enum:
		v.Kind, v.Size, v.Signed = KindInt, int(u.Size), u.Signed
	case *cbtf.Struct, *cbtf.Union:
		size, err := cbtf.Sizeof(u)
		if err != nil {
			return v, err
		}
		if size > 16 {
			return v, fmt.Errorf("%s is %d bytes: %w", v.CType, size, ErrArgTooLarge)
		}
		v.Kind, v.Size, v.Slots = KindAggregate, size, (size+7)/8
	default:
		return v, fmt.Errorf("unsupported type %s", v.CType)
	}
	return v, nil
}

// Arg returns the argument called name, or an error wrapping ErrUnknownArg
// that lists the real names.
func (f *Func) Arg(name string) (Value, error) {
	for _, p := range f.Params {
		if p.Name == name {
			return p, nil
		}
	}
	return Value{}, fmt.Errorf("%w %q of %s (have %s)", ErrUnknownArg, name, f.Name, strings.Join(f.ArgNames(), ", "))
}

// ArgNames lists the argument names in order.
func (f *Func) ArgNames() []string {
	names := make([]string, len(f.Params))
	for i, p := range f.Params {
		names[i] = p.Name
	}
	return names
}

// ArgType returns the declared BTF type of argument name.
func (f *Func) ArgType(name string) (cbtf.Type, error) {
	v, err := f.Arg(name)
	return v.Type, err
}

// ReturnType returns the declared BTF return type (*btf.Void for void).
func (f *Func) ReturnType() cbtf.Type { return f.Return.Type }

// Prototype renders the function as a C declaration.
func (f *Func) Prototype() string {
	params := make([]string, len(f.Params))
	for i, p := range f.Params {
		params[i] = declare(p.CType, p.Name)
	}
	if len(params) == 0 {
		params = []string{"void"}
	}
	return declare(f.Return.CType, f.Name) + "(" + strings.Join(params, ", ") + ")"
}

func declare(ctype, name string) string {
	if strings.HasSuffix(ctype, "*") {
		return ctype + name
	}
	return ctype + " " + name
}

// maxChain bounds the pointers, qualifiers and array dimensions CType
// writes around one type, as cilium/ebpf bounds typedef chains.
const maxChain = 32

// CType writes t the way C would declare it, keeping typedef names. A
// pointer, qualifier or array that leads back to itself is written
// <cycle>, a chain longer than 32 <too deep>; names that are not made of
// letters, digits, underscores and spaces are Go-quoted.
func CType(t cbtf.Type) string { return ctype(t, nil) }

func ctype(t cbtf.Type, chain []cbtf.Type) string {
	for _, c := range chain {
		if c == t {
			return "<cycle>"
		}
	}
	if len(chain) == maxChain {
		return "<too deep>"
	}
	chain = append(chain, t)
	switch v := t.(type) {
	case nil, *cbtf.Void:
		return "void"
	case *cbtf.Pointer:
		s := ctype(v.Target, chain)
		if strings.HasSuffix(s, "*") {
			return s + "*"
		}
		return s + " *"
	case *cbtf.Const:
		return "const " + ctype(v.Type, chain)
	case *cbtf.Volatile:
		return "volatile " + ctype(v.Type, chain)
	case *cbtf.Restrict:
		return ctype(v.Type, chain)
	case *cbtf.TypeTag:
		return ctype(v.Type, chain)
	case *cbtf.Struct:
		return "struct " + anon(v.Name)
	case *cbtf.Union:
		return "union " + anon(v.Name)
	case *cbtf.Enum:
		return "enum " + anon(v.Name)
	case *cbtf.Fwd:
		return v.Kind.String() + " " + quoteName(v.Name)
	case *cbtf.Array:
		return fmt.Sprintf("%s[%d]", ctype(v.Type, chain), v.Nelems)
	case *cbtf.FuncProto:
		return "fn"
	}
	if n := t.TypeName(); n != "" {
		return quoteName(n)
	}
	return fmt.Sprintf("%T", t)
}

// underlying strips typedefs and qualifiers like cilium/ebpf's
// UnderlyingType, whose answers gen/ relies on, but returns an error
// wrapping ErrCycle where that returns its placeholder for a chain that
// loops or runs deeper than 32.
func underlying(t cbtf.Type) (cbtf.Type, error) {
	u := cbtf.UnderlyingType(t)
	switch u.(type) {
	case nil, *cbtf.Void, *cbtf.Int, *cbtf.Pointer, *cbtf.Array, *cbtf.Struct, *cbtf.Union, *cbtf.Enum,
		*cbtf.Fwd, *cbtf.Func, *cbtf.FuncProto, *cbtf.Var, *cbtf.Datasec, *cbtf.Float:
		return u, nil
	}
	return nil, fmt.Errorf("%s: %w (typedefs and qualifiers loop or nest deeper than 32)", CType(t), ErrCycle)
}

func anon(name string) string {
	if name == "" {
		return "{...}"
	}
	return quoteName(name)
}
