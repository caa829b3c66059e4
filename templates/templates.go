// Package templates holds the scaffolding `fentrygen new` writes: text
// templates rendered with the target's arguments from BTF.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"go/format"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var stub = template.Must(template.ParseFS(files, "stub.go.tmpl"))

// Stub describes the probe a new stub file declares.
type Stub struct {
	Package   string
	Kind      string // fentry, fexit or fmod_ret
	Target    string
	Prototype string
	Stub      string // the stub function's name
	Context   string // the generated context type
	Args      string // comma-separated argument names
	Ret       bool
}

// Render returns the stub file, gofmt'd.
func Render(s Stub) ([]byte, error) {
	var buf bytes.Buffer
	if err := stub.Execute(&buf, s); err != nil {
		return nil, err
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format stub: %w", err)
	}
	return out, nil
}
