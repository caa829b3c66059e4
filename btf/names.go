package btf

import (
	"errors"
	"strconv"
)

// ErrBadName is wrapped by errors for a name that is not a C identifier
// where BTF requires one.
var ErrBadName = errors.New("not a C identifier")

// IsCIdent reports whether name is a C identifier: ASCII letters, digits
// and underscores, not starting with a digit. The kernel requires it of the
// names of structs, unions, enums, typedefs, functions, members and
// parameters; anything else must never reach generated code.
func IsCIdent(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// quoteName returns name as is when it is made of what C type names are
// made of (letters, digits, underscores, spaces: "long unsigned int"), and
// Go-quoted otherwise, so that messages and CType never carry newlines,
// control characters or anything else a name should not hold.
func quoteName(name string) string {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && c != ' ' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
			return strconv.Quote(name)
		}
	}
	return name
}
