// Package testmod writes throwaway Go modules that depend on this checkout,
// for tests that run the generator or the go command on user code.
package testmod

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// Root is the checkout's root folder.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testmod: cannot find the checkout")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Write creates a module example.com/probes holding files; it requires this
// checkout through a replace directive, with the checkout's go line,
// requirements and go.sum, so it builds offline.
func Write(t testing.TB, files map[string][]byte) string {
	t.Helper()
	root := Root(t)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go .*$`).FindString(string(gomod))
	var requires string
	for _, block := range regexp.MustCompile(`(?s)require \(.*?\)`).FindAllString(string(gomod), -1) {
		requires += block + "\n"
	}
	mod := "module example.com/probes\n\n" + goLine + "\n\nrequire github.com/fentrygen/fentrygen v0.0.0\n\n" + requires +
		"\nreplace github.com/fentrygen/fentrygen => " + root + "\n"
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string][]byte{"go.mod": []byte(mod), "go.sum": sum}
	for name, data := range files {
		all[name] = data
	}
	for name, data := range all {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
