package gen

import (
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"go/types"
	"path/filepath"
	"sort"
	"strings"
)

// Diagnostic is one problem found in the user's package.
type Diagnostic struct {
	Pos     token.Position
	Message string
	// Warning diagnostics do not stop generation.
	Warning bool
}

// String renders file:line:col: message with the file relative to dir
// when it lies below it.
func (d Diagnostic) String() string { return d.Relative("") }

// Relative renders the diagnostic with its file relative to dir.
func (d Diagnostic) Relative(dir string) string {
	file := d.Pos.Filename
	if dir != "" {
		if rel, err := filepath.Rel(dir, file); err == nil && !strings.HasPrefix(rel, "..") {
			file = rel
		}
	}
	prefix := ""
	if d.Warning {
		prefix = "warning: "
	}
	if file == "" {
		return prefix + d.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", file, d.Pos.Line, d.Pos.Column, prefix, d.Message)
}

// Diagnostics is a list of problems; as an error it reports them all.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any diagnostic is not a warning.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if !d.Warning {
			return true
		}
	}
	return false
}

// Sorted sorts ds by position (file, line, column), keeping the order of
// diagnostics at one position, and returns it.
func (ds Diagnostics) Sorted() Diagnostics {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return ds
}

type diags struct {
	list Diagnostics
}

func (d *diags) errorf(pos token.Position, format string, args ...any) {
	d.list = append(d.list, Diagnostic{Pos: pos, Message: fmt.Sprintf(format, args...)})
}

func (d *diags) warnf(pos token.Position, format string, args ...any) {
	d.list = append(d.list, Diagnostic{Pos: pos, Message: fmt.Sprintf(format, args...), Warning: true})
}

// add records err with its position: a list of parse errors, a type error,
// a posError, or an error without one.
func (d *diags) add(err error) {
	var list scanner.ErrorList
	var te types.Error
	var pe posError
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			d.errorf(e.Pos, "%s", e.Msg)
		}
	case errors.As(err, &te):
		d.errorf(te.Fset.Position(te.Pos), "%s", te.Msg)
	case errors.As(err, &pe):
		d.errorf(pe.pos, "%v", pe.err)
	default:
		d.errorf(token.Position{}, "%v", err)
	}
}
