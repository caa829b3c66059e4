package load

import (
	"encoding/json"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/internal/testmod"
)

// age sets every file and folder below dir an hour back, as if written
// long before the test ran.
func age(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	require.NoError(t, filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(path, old, old)
	}))
}

// typeOfX loads the probes package and returns the type of its X.
func typeOfX(t *testing.T, cfg Config) string {
	t.Helper()
	inputs, diags, err := Packages(cfg)
	require.NoError(t, err)
	require.Empty(t, diags)
	require.Len(t, inputs, 1)
	return types.TypeString(inputs[0].Types.Scope().Lookup("X").Type(), nil)
}

func TestCacheAnswersUntilSomethingChanges(t *testing.T) {
	dir := testmod.Write(t, map[string][]byte{
		"dep/dep.go":    []byte("package dep\n\nfunc A() int { return 1 }\n"),
		"probes/p.go":   []byte("package probes\n\nimport \"example.com/probes/dep\"\n\nvar X = dep.A()\n"),
		"probes/go.txt": []byte("not Go\n"),
	})
	age(t, dir)
	cfg := Config{Dir: filepath.Join(dir, "probes"), CacheDir: t.TempDir()}
	paths := slices.Sorted(slices.Values(append([]string{"example.com/probes/dep"}, gen.RuntimeImports...)))
	hit := func() bool {
		_, ok := openCache(cfg, paths).lookup()
		return ok
	}
	require.False(t, hit(), "an empty cache answers nothing")
	assert.Equal(t, "int", typeOfX(t, cfg))
	require.True(t, hit(), "a successful listing of settled files is kept")
	assert.Equal(t, "int", typeOfX(t, cfg), "the cached answer gives the same types")

	// An edit of a dependency: the next load asks the go command again
	// and sees the new type.
	dep := filepath.Join(dir, "dep", "dep.go")
	require.NoError(t, os.WriteFile(dep, []byte("package dep\n\nfunc A() string { return \"\" }\n"), 0o644))
	assert.False(t, hit(), "an edited dependency is a miss")
	assert.Equal(t, "string", typeOfX(t, cfg))
	assert.False(t, hit(), "a listing that depends on a file changed just now is not kept")
	age(t, dir)
	assert.Equal(t, "string", typeOfX(t, cfg))
	require.True(t, hit())

	// A file added beside a dependency, even one the build ignores.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dep", "doc.txt"), []byte("x\n"), 0o644))
	assert.False(t, hit(), "a file added to a dependency's folder is a miss")
	age(t, dir)
	typeOfX(t, cfg)
	require.True(t, hit())

	// go.mod and go.sum are part of the answer.
	gomod := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(gomod)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(gomod, append(data, "\n// edited\n"...), 0o644))
	assert.False(t, hit(), "an edited go.mod is a miss")
	age(t, dir)
	typeOfX(t, cfg)
	require.True(t, hit())

	// Export data the go command's cache no longer holds.
	c := openCache(cfg, paths)
	data, err = os.ReadFile(c.file)
	require.NoError(t, err)
	var e entry
	require.NoError(t, json.Unmarshal(data, &e))
	gone := filepath.Join(t.TempDir(), "trimmed-d")
	for i, s := range e.Stamps {
		if s.Path == e.Exports.Files["example.com/probes/dep"] {
			e.Stamps[i].Path = gone
		}
	}
	e.Exports.Files["example.com/probes/dep"] = gone
	data, err = json.Marshal(e)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(c.file, data, 0o644))
	assert.False(t, hit(), "export data that is gone is a miss")
	assert.Equal(t, "string", typeOfX(t, cfg))
	require.True(t, hit())
}

func TestCacheKeyedByTheQuestion(t *testing.T) {
	dir := testmod.Write(t, map[string][]byte{"p.go": []byte("package probes\n")})
	cfg := Config{Dir: dir, CacheDir: t.TempDir()}
	paths := gen.RuntimeImports
	base := openCache(cfg, paths)
	require.NotNil(t, base)
	tagged := cfg
	tagged.Tags = []string{"extra"}
	flagged := cfg
	flagged.Env = append(os.Environ(), "GOFLAGS=-trimpath")
	for name, other := range map[string]*cache{
		"tags":           openCache(tagged, paths),
		"GOFLAGS":        openCache(flagged, paths),
		"packages":       openCache(cfg, paths[:1]),
		"another folder": openCache(Config{Dir: filepath.Join(dir, ".."), CacheDir: cfg.CacheDir}, paths),
	} {
		require.NotNil(t, other, name)
		assert.NotEqual(t, base.file, other.file, "%s are part of the key", name)
	}
	overlay := cfg
	overlay.Env = append(os.Environ(), "GOFLAGS=-overlay=/dev/null")
	assert.Nil(t, openCache(overlay, paths), "an overlay's files are not stamped: no cache")
	assert.Nil(t, openCache(Config{Dir: dir}, paths), "no cache folder: no cache")
}
