package gen

import (
	"fmt"
	"go/token"
	"path"
	"slices"
	"strconv"
	"strings"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/runtime"
)

// annotation is one parsed //fentry:, //fexit:, //fmod_ret:, //tp_btf:
// or //fsession: line.
type annotation struct {
	Pos       token.Position // of the "//"
	TargetPos token.Position // of the function name
	Kind      runtime.Kind
	Target    string
	// Targets are the names and glob patterns of a probe on several
	// functions (//fentry:vfs_read,vfs_write or //fentry:vfs_*), each at
	// its position in TargetsPos; Target is then the list as written.
	Targets    []string
	TargetsPos []token.Position
	// Module is the kernel module of MODULE:FUNC ("" when not given), at
	// ModulePos.
	Module    string
	ModulePos token.Position
	Args      []argSpec // nil: every argument
	AllArgs   bool
	Ret       bool
	Task      bool
	Depth     int // 0: only what the stubs use
	Sleepable bool
	// Cookie is an fsession's cookie type (u64 when not given).
	Cookie string
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
	{"//tp_btf:", runtime.TpBtf},
	{"//fsession:", runtime.Fsession},
}

// MaxDepth bounds depth=: pointer hops whose members all get accessors.
const MaxDepth = 4

// gofmtSpaced are what gofmt makes of "//fmod_ret:" and "//tp_btf:": an
// underscore keeps them from looking like directives, so gofmt inserts a
// space. Both forms are accepted.
var gofmtSpaced = []string{"fmod_ret:", "tp_btf:", "fsession:"}

// normalize undoes gofmt's space in "// fmod_ret:" and "// tp_btf:" and
// returns how many bytes it removed (for columns).
func normalize(text string) (string, int) {
	for _, d := range gofmtSpaced {
		if rest, ok := strings.CutPrefix(text, "// "+d); ok {
			return "//" + d + rest, 1
		}
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

// directives are the comment directives fentrygen reads, for near-miss
// warnings.
var directives = []string{"fentry:", "fexit:", "fmod_ret:", "tp_btf:", "fsession:", "fentrygen:event", "fentrygen:map"}

// nearMiss reports a comment that looks like a misspelled or misformatted
// directive: "//fentri:", "//Fentry:", "//fentrygen:evnet", or "// fentry:x"
// (a space turns a directive into prose; only gofmt's "// fmod_ret:" is
// accepted). It returns the warning, or "".
func nearMiss(text string) string {
	if body, ok := strings.CutPrefix(text, "// "); ok {
		for _, d := range []string{"fentry:", "fexit:"} {
			if rest, ok := strings.CutPrefix(body, d); ok && rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				return fmt.Sprintf("\"// %s\" is prose, not an annotation: write //%s with no space after //", d, d)
			}
		}
		return ""
	}
	body, ok := strings.CutPrefix(text, "//")
	if !ok {
		return ""
	}
	word := body
	if i := strings.IndexAny(word, " \t"); i >= 0 {
		word = word[:i]
	}
	directive := word
	if !strings.HasPrefix(strings.ToLower(word), "fentrygen:") {
		i := strings.IndexByte(word, ':')
		if i <= 0 {
			return ""
		}
		directive = word[:i+1]
	}
	for _, d := range directives {
		if directive == d {
			return ""
		}
	}
	for _, d := range directives {
		if strings.EqualFold(directive, d) || fbtf.Nearest(strings.ToLower(directive), []string{d}, 1) != nil {
			return fmt.Sprintf("unknown directive //%s (did you mean //%s?)", directive, d)
		}
	}
	return ""
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
	prefix := strings.SplitAfter(text, ":")[0]
	want := "[MODULE:]FUNCTION"
	if a.Kind == runtime.TpBtf {
		want = "FUNCTION"
	}
	optionList := "[args=a,b] [ret] [task] [depth=N] [sleepable]"
	if a.Kind == runtime.Fsession {
		optionList += " [cookie=TYPE]"
	}
	if len(fields) == 0 || fields[0].col != 0 || fields[0].text == "" {
		return nil, posError{at(pos, offset), fmt.Errorf("malformed annotation %q: want %s%s %s", text, prefix, want, optionList)}
	}
	target := fields[0].text
	if module, fn, ok := strings.Cut(target, ":"); ok {
		if err := a.module(pos, offset, prefix, module, fn); err != nil {
			return nil, err
		}
		target = fn
		offset += len(module) + 1
	}
	a.Target = target
	a.TargetPos = at(pos, offset)
	if !isCIdent(target) {
		if a.Module != "" {
			return nil, posError{a.TargetPos, fmt.Errorf("%q: a module's functions are probed one per probe: no list or pattern after %s:", a.Module+":"+target, a.Module)}
		}
		if err := a.parseTargets(text, optionList); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		fpos := at(pos, offset+f.col)
		key, value, hasValue := strings.Cut(f.text, "=")
		if seen[key] {
			return nil, posError{fpos, fmt.Errorf("%s given twice", key)}
		}
		seen[key] = true
		switch {
		case key == "args" && hasValue:
			a.AllArgs = false
			a.Args = []argSpec{}
			col := offset + f.col + len("args=")
			if value == "" {
				// args= alone: a probe that reads no argument.
				continue
			}
			for _, item := range strings.Split(value, ",") {
				name, cast, _ := strings.Cut(item, ":")
				if !isCIdent(name) || (cast != "" && !isCIdent(cast)) || strings.Count(item, ":") > 1 {
					return nil, posError{at(pos, col), fmt.Errorf("malformed argument %q in args=: want NAME or NAME:STRUCT", item)}
				}
				a.Args = append(a.Args, argSpec{Name: name, Cast: cast, Pos: at(pos, col)})
				col += len(item) + 1
			}
		case key == "ret" && !hasValue:
			if a.Kind == runtime.Fentry {
				return nil, posError{fpos, fmt.Errorf("ret: fentry programs run before the function returns; use fexit")}
			}
			if a.Kind == runtime.TpBtf {
				return nil, posError{fpos, fmt.Errorf("ret: tracepoints return nothing")}
			}
			a.Ret = true
		case key == "task" && !hasValue:
			a.Task = true
		case key == "sleepable" && !hasValue:
			a.Sleepable = true
		case key == "cookie" && hasValue:
			if a.Kind != runtime.Fsession {
				return nil, posError{fpos, fmt.Errorf("cookie=: only fsession probes have a per-call cookie (%s has none)", a.Kind)}
			}
			if !slices.Contains(cookieTypes, value) {
				hint := ""
				if slices.Contains(cookieTypes, strings.ToLower(value)) {
					hint = fmt.Sprintf(" (did you mean %s?)", strings.ToLower(value))
				}
				return nil, posError{at(fpos, len("cookie=")), fmt.Errorf("cookie=%s: want one of %s: the kernel keeps one u64 per call%s", value, strings.Join(cookieTypes, ", "), hint)}
			}
			a.Cookie = value
		case key == "depth" && hasValue:
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 || n > MaxDepth {
				return nil, posError{fpos, fmt.Errorf("depth=%s: want a pointer depth from 1 to %d", value, MaxDepth)}
			}
			a.Depth = n
		default:
			want := "args=, ret, task, depth=, sleepable"
			if a.Kind == runtime.Fsession {
				want += ", cookie="
			}
			return nil, posError{fpos, fmt.Errorf("unknown option %q (want %s)", f.text, want)}
		}
	}
	if a.Kind == runtime.Fsession && a.Cookie == "" {
		a.Cookie = "u64"
	}
	return a, nil
}

// parseTargets parses a.Target as a list of names and glob patterns
// (vfs_read,vfs_write or vfs_*): a probe on several functions, which is
// fentry or fexit.
func (a *annotation) parseTargets(text, optionList string) error {
	col := 0
	seen := map[string]bool{}
	for _, item := range strings.Split(a.Target, ",") {
		ipos := at(a.TargetPos, col)
		col += len(item) + 1
		switch {
		case item == "" || !isCIdent(item) && !isPattern(item):
			return posError{ipos, fmt.Errorf("malformed function %q in %q: want FUNCTION, a list FUNC1,FUNC2 or a pattern such as vfs_* (%s)", item, text, optionList)}
		case seen[item]:
			return posError{ipos, fmt.Errorf("%s given twice", item)}
		}
		if _, err := path.Match(item, ""); err != nil {
			return posError{ipos, fmt.Errorf("pattern %q: %v", item, err)}
		}
		seen[item] = true
		a.Targets = append(a.Targets, item)
		a.TargetsPos = append(a.TargetsPos, ipos)
	}
	if a.Kind != runtime.Fentry && a.Kind != runtime.Fexit {
		return posError{a.TargetPos, fmt.Errorf("%s probes attach to one function each: only fentry and fexit take a list or pattern (%s)", a.Kind, a.Target)}
	}
	return nil
}

// isPattern reports whether s is a glob pattern over C identifiers: their
// characters and *, ?, [...].
func isPattern(s string) bool {
	if !fbtf.IsPattern(s) {
		return false
	}
	for _, c := range s {
		ok := c == '_' || c == '*' || c == '?' || c == '[' || c == ']' || c == '-' || c == '^' || c == '!' ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// cookieTypes are the types an fsession's cookie may have: C's names for
// the runtime's integer values (u64 is runtime.U64).
var cookieTypes = []string{"u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64"}

// cookieGoType is the Go integer type of a cookie type: u32 -> uint32.
func cookieGoType(c string) string {
	if c[0] == 'u' {
		return "uint" + c[1:]
	}
	return "int" + c[1:]
}

// module checks the MODULE of MODULE:FUNC, which starts offset bytes
// into the comment at pos.
func (a *annotation) module(pos token.Position, offset int, prefix, module, fn string) error {
	mpos := at(pos, offset)
	switch {
	case a.Kind == runtime.TpBtf:
		return posError{mpos, fmt.Errorf("%q: tracepoints are named without a module (tp_btf attaches to vmlinux's and the loaded modules' tracepoints by name alone)", prefix+module+":"+fn)}
	case module == "":
		return posError{mpos, fmt.Errorf("%q: no module before the colon: want %sMODULE:FUNCTION, or %sFUNCTION for vmlinux's", prefix+":"+fn, prefix, prefix)}
	case module == "vmlinux":
		return posError{mpos, fmt.Errorf("vmlinux is not a module: write %s%s for vmlinux's function", prefix, fn)}
	case strings.Contains(module, "-") && fbtf.IsModuleName(strings.ReplaceAll(module, "-", "_")):
		return posError{mpos, fmt.Errorf("module %s: the kernel names modules with _ where their files have - (write %s)", module, strings.ReplaceAll(module, "-", "_"))}
	case !fbtf.IsModuleName(module):
		return posError{mpos, fmt.Errorf("malformed module name %q: want letters, digits and _ as in /sys/kernel/btf/MODULE", module)}
	case fn == "":
		return posError{at(mpos, len(module)+1), fmt.Errorf("%q: no function after the module: want %s%s:FUNCTION", prefix+module+":", prefix, module)}
	case strings.Contains(fn, ":"):
		return posError{at(mpos, len(module)+1), fmt.Errorf("malformed function %q: want %sMODULE:FUNCTION, one module", fn, prefix)}
	}
	a.Module, a.ModulePos = module, mpos
	return nil
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

// options parses the key=value options after a directive, each at most
// once; parse gets each with its position.
func options(pos token.Position, prefix, text, want string, parse func(key, value string, pos token.Position) error) error {
	rest := strings.TrimPrefix(text, prefix)
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return posError{pos, fmt.Errorf("malformed annotation %q: want %s %s", text, prefix, want)}
	}
	seen := map[string]bool{}
	for _, f := range splitFields(rest) {
		fpos := at(pos, len(prefix)+f.col)
		key, value, ok := strings.Cut(f.text, "=")
		if !ok {
			return posError{fpos, fmt.Errorf("unknown option %q (want %s)", f.text, want)}
		}
		if seen[key] {
			return posError{fpos, fmt.Errorf("%s given twice", key)}
		}
		seen[key] = true
		if err := parse(key, value, fpos); err != nil {
			return err
		}
	}
	return nil
}

func parseEvent(pos token.Position, text string) (*eventAnnotation, error) {
	e := &eventAnnotation{Pos: pos, Size: defaultRingbufSize}
	err := options(pos, eventPrefix, text, "size=BYTES", func(key, value string, fpos token.Position) error {
		if key != "size" {
			return posError{fpos, fmt.Errorf("unknown option %q (want size=)", key)}
		}
		n, err := strconv.ParseUint(value, 0, 32)
		if err != nil || n < runtime.MinRingbufSize || n > runtime.MaxRingbufSize || n&(n-1) != 0 {
			return posError{fpos, fmt.Errorf("size=%s: want a power of two from %d to %d", value, runtime.MinRingbufSize, runtime.MaxRingbufSize)}
		}
		e.Size = uint32(n)
		return nil
	})
	return e, err
}

// mapAnnotation is a //fentrygen:map line.
type mapAnnotation struct {
	Pos        token.Position
	MaxEntries uint32
	Slots      int
	Base, Step uint64
	// at holds each option's position, for errors about options that do
	// not fit the map's kind.
	at map[string]token.Position
}

const mapPrefix = "//fentrygen:map"

// DefaultMaxEntries sizes hash maps without max= (bcc's usual MAX_ENTRIES).
const DefaultMaxEntries = 10240

// MaxMapEntries bounds max=.
const MaxMapEntries = 1 << 24

func parseMap(pos token.Position, text string) (*mapAnnotation, error) {
	m := &mapAnnotation{Pos: pos, at: map[string]token.Position{}}
	err := options(pos, mapPrefix, text, "max=N, slots=N, base=N, step=N", func(key, value string, fpos token.Position) error {
		n, err := strconv.ParseUint(value, 0, 64)
		limit := map[string]uint64{"max": MaxMapEntries, "slots": runtime.MaxHistSlots, "base": 1<<31 - 1, "step": 1<<31 - 1}[key]
		if limit == 0 {
			return posError{fpos, fmt.Errorf("unknown option %q (want max=, slots=, base=, step=)", key)}
		}
		low := uint64(1)
		if key == "base" {
			low = 0
		}
		if err != nil || n < low || n > limit {
			return posError{fpos, fmt.Errorf("%s=%s: want a number from %d to %d", key, value, low, limit)}
		}
		m.at[key] = fpos
		switch key {
		case "max":
			m.MaxEntries = uint32(n)
		case "slots":
			m.Slots = int(n)
		case "base":
			m.Base = n
		case "step":
			m.Step = n
		}
		return nil
	})
	return m, err
}
