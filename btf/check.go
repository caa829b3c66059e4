package btf

import "errors"

// ErrCycle is wrapped by errors for a type that contains or refers to
// itself in a way C cannot express: a struct holding itself by value
// (directly, through anonymous members, arrays, typedefs or qualifiers), or
// a loop of typedefs, qualifiers or pointers that passes through no struct
// or union.
var ErrCycle = errors.New("type refers to itself")

// MaxMembers bounds the members a struct or union may have, counting those
// of its anonymous members and the anonymous members themselves. The
// largest kernel structs have a few hundred; the bound keeps a BTF whose
// anonymous members share types in a deep lattice (2 members at each of 40
// levels are 2^40 paths) from taking forever.
const MaxMembers = 1 << 16
