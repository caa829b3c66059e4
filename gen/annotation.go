package gen

import (
	"fmt"
	"go/token"
	"regexp"
	"strconv"
	"strings"

	"github.com/fentrygen/fentrygen/runtime"
)

// annotation is one parsed //fentry:, //fexit: or //fmod_ret: line.
type annotation struct {
	Pos       token.Position // of the "//"
	TargetPos token.Position // of the function name
	Kind      runtime.Kind
	Target    string
	Args      []argSpec // nil: every argument
	AllArgs   bool
	Ret       bool
	Depth     int // 0: the default
	Sleepable bool
}

// argSpec is one entry of args=: a name and an optional struct to view the
// pointee as.
type argSpec struct {
	Name string
	Cast string
	Pos  token.Position
}

var kindPrefixes = []struct {
	prefix string
	kind   runtime.Kind
}{
	{"//fentry:", runtime.Fentry},
	{"//fexit:", runtime.Fexit},
	{"//fmod_ret:", runtime.FmodRet},
}

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// gofmtFmodRet is what gofmt makes of "//fmod_ret:": an underscore keeps
// it from looking like a directive, so gofmt inserts a space. Both forms
// are accepted.
const gofmtFmodRet = "// fmod_ret:"

// normalize undoes gofmt's space in "// fmod_ret:" and returns how many
// bytes it removed (for columns).
func normalize(text string) (string, int) {
	if rest, ok := strings.CutPrefix(text, gofmtFmodRet); ok {
		return "//fmod_ret:" + rest, 1
	}
	return text, 0
}

// isAnnotation reports whether a comment line is meant as a probe
// annotation (so that a malformed one is reported, not ignored).
func isAnnotation(text string) bool {
	text, _ = normalize(text)
	for _, k := range kindPrefixes {
		if strings.HasPrefix(text, k.prefix) {
			return true
		}
	}
	return false
}

// at returns the position col bytes into the comment at pos.
func at(pos token.Position, col int) token.Position {
	pos.Column += col
	pos.Offset += col
	return pos
}

// parseAnnotation parses text, the whole comment line starting with "//".
func parseAnnotation(pos token.Position, text string) (*annotation, error) {
	text, shift := normalize(text)
	a := &annotation{Pos: pos, AllArgs: true}
	pos = at(pos, shift)
	var rest string
	for _, k := range kindPrefixes {
		if r, ok := strings.CutPrefix(text, k.prefix); ok {
			a.Kind, rest = k.kind, r
			break
		}
	}
	offset := len(text) - len(rest)
	fields := splitFields(rest)
	if len(fields) == 0 || !ident.MatchString(fields[0].text) {
		return nil, posError{at(pos, offset), fmt.Errorf("malformed annotation %q: want %sFUNCTION [args=a,b] [ret] [depth=N] [sleepable]", text, strings.SplitAfter(text, ":")[0])}
	}
	a.Target = fields[0].text
	a.TargetPos = at(pos, offset+fields[0].col)
	for _, f := range fields[1:] {
		fpos := at(pos, offset+f.col)
		key, value, hasValue := strings.Cut(f.text, "=")
		switch {
		case key == "args" && hasValue:
			a.AllArgs = false
			a.Args = []argSpec{}
			col := offset + f.col + len("args=")
			for _, item := range strings.Split(value, ",") {
				name, cast, _ := strings.Cut(item, ":")
				if !ident.MatchString(name) || (cast != "" && !ident.MatchString(cast)) || strings.Count(item, ":") > 1 {
					return nil, posError{at(pos, col), fmt.Errorf("malformed argument %q in args=: want NAME or NAME:STRUCT", item)}
				}
				a.Args = append(a.Args, argSpec{Name: name, Cast: cast, Pos: at(pos, col)})
				col += len(item) + 1
			}
		case key == "ret" && !hasValue:
			if a.Kind == runtime.Fentry {
				return nil, posError{fpos, fmt.Errorf("ret: fentry programs run before the function returns; use fexit")}
			}
			a.Ret = true
		case key == "sleepable" && !hasValue:
			a.Sleepable = true
		case key == "depth" && hasValue:
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 || n > 4 {
				return nil, posError{fpos, fmt.Errorf("depth=%s: want a pointer depth from 1 to 4", value)}
			}
			a.Depth = n
		default:
			return nil, posError{fpos, fmt.Errorf("unknown option %q (want args=, ret, depth=, sleepable)", f.text)}
		}
	}
	return a, nil
}

type field struct {
	text string
	col  int
}

func splitFields(s string) []field {
	var out []field
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' || s[i] == '\t' {
			if start >= 0 {
				out = append(out, field{s[start:i], start})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return out
}

// posError is an error at a position.
type posError struct {
	pos token.Position
	err error
}

func (e posError) Error() string { return e.err.Error() }

// eventAnnotation is a //fentrygen:event line.
type eventAnnotation struct {
	Pos  token.Position
	Size uint32
}

const eventPrefix = "//fentrygen:event"

// defaultRingbufSize is the ring buffer size of an event type without size=.
const defaultRingbufSize = 1 << 18

func parseEvent(pos token.Position, text string) (*eventAnnotation, error) {
	rest := strings.TrimPrefix(text, eventPrefix)
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return nil, posError{pos, fmt.Errorf("malformed annotation %q: want %s [size=BYTES]", text, eventPrefix)}
	}
	e := &eventAnnotation{Pos: pos, Size: defaultRingbufSize}
	for _, f := range splitFields(rest) {
		fpos := at(pos, len(eventPrefix)+f.col)
		value, ok := strings.CutPrefix(f.text, "size=")
		if !ok {
			return nil, posError{fpos, fmt.Errorf("unknown option %q (want size=)", f.text)}
		}
		n, err := strconv.ParseUint(value, 0, 32)
		if err != nil || n < 4096 || n&(n-1) != 0 {
			return nil, posError{fpos, fmt.Errorf("size=%s: want a power of two of at least 4096", value)}
		}
		e.Size = uint32(n)
	}
	return e, nil
}
