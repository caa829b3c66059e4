package load

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cacheVersion changes when an entry's meaning does.
const cacheVersion = "fentrygen export cache 1"

// goEnvKeys are the go command's settings an export listing depends on:
// the toolchain, the target, the build flags and the module set-up.
var goEnvKeys = []string{
	"GOVERSION", "GOROOT", "GOOS", "GOARCH", "GOAMD64", "GOARM", "GOARM64", "GO386",
	"GOEXPERIMENT", "GOFLAGS", "GODEBUG", "GOFIPS140", "CGO_ENABLED", "CGO_CFLAGS",
	"CGO_CPPFLAGS", "CGO_LDFLAGS", "CC", "GOMOD", "GOWORK", "GOPATH", "GOMODCACHE", "GOCACHE",
}

// settleTime is how long after a file's last change its stamp is trusted:
// a change within the same tick of a coarse file system clock would leave
// it unchanged.
const settleTime = 2 * time.Second

// cache remembers the go command's export listings. An entry is keyed by
// the question (folder, tags, environment, the go command's settings,
// packages) and holds the answer with a stamp of every file the answer
// depends on outside the read-only module cache and GOROOT: the folders
// of dependencies in the main module, workspaces and replacements, and
// go.mod, go.sum and go.work. An entry whose stamps all hold is the answer
// the go command would give, without running its build.
type cache struct {
	file     string
	modCache string
	env      map[string]string
}

// entry is one cached answer.
type entry struct {
	Exports exports `json:"exports"`
	Stamps  []stamp `json:"stamps"`
}

// stamp is what a file or folder looked like: absent, present (export
// data, which the go command touches when it uses it), or with its size,
// mode and modification time.
type stamp struct {
	Path    string `json:"path"`
	Absent  bool   `json:"absent,omitempty"`
	Present bool   `json:"present,omitempty"`
	Size    int64  `json:"size,omitempty"`
	Mode    uint32 `json:"mode,omitempty"`
	ModTime int64  `json:"mtime,omitempty"`
}

// openCache returns the cache for a listing of paths, or nil when there
// is none: no cache folder, or a set-up it cannot vouch for (the go
// command's settings unreadable, an -overlay in GOFLAGS).
func openCache(cfg Config, paths []string) *cache {
	if cfg.CacheDir == "" {
		return nil
	}
	cmd := exec.Command("go", append([]string{"env", "-json"}, goEnvKeys...)...)
	cmd.Dir, cmd.Env = cfg.Dir, cfg.Env
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var env map[string]string
	if json.Unmarshal(out, &env) != nil || strings.Contains(env["GOFLAGS"], "overlay") || env["GOMODCACHE"] == "" {
		return nil
	}
	h := sha256.New()
	for _, part := range [][]string{{cacheVersion, cfg.Dir}, cfg.Tags, cfg.Env, {string(out)}, paths} {
		for _, s := range part {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return &cache{
		file:     filepath.Join(cfg.CacheDir, hex.EncodeToString(h.Sum(nil))+".json"),
		modCache: env["GOMODCACHE"],
		env:      env,
	}
}

// lookup returns the cached answer if every stamp still holds.
func (c *cache) lookup() (exports, bool) {
	if c == nil {
		return exports{}, false
	}
	data, err := os.ReadFile(c.file)
	if err != nil {
		return exports{}, false
	}
	var e entry
	if json.Unmarshal(data, &e) != nil || e.Exports.Files == nil {
		return exports{}, false
	}
	for _, s := range e.Stamps {
		now, _ := stampOf(s.Path, s.Present)
		if now != s {
			return exports{}, false
		}
	}
	return e.Exports, true
}

// store keeps a successful listing's answer with its stamps. Nothing is
// kept when a package failed, or when a stamped file changed too recently
// to trust its stamp; failing to write only costs the next run time.
func (c *cache) store(l listing, ex exports) {
	if c == nil || !l.ok() || len(ex.Problems) > 0 {
		return
	}
	stamps, ok := c.stamps(l, ex)
	if !ok {
		return
	}
	data, err := json.Marshal(entry{Exports: ex, Stamps: stamps})
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(c.file), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.file), ".entry-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), c.file) != nil {
		os.Remove(tmp.Name())
	}
}

// stamps stamps everything the listing depends on; ok is false when
// something changed within settleTime.
func (c *cache) stamps(l listing, ex exports) ([]stamp, bool) {
	var paths []string
	present := map[string]bool{}
	if mod := c.env["GOMOD"]; mod != "" && mod != os.DevNull {
		paths = append(paths, mod, filepath.Join(filepath.Dir(mod), "go.sum"))
	}
	if work := c.env["GOWORK"]; work != "" && work != "off" {
		paths = append(paths, work, work+".sum")
	}
	for _, file := range ex.Files {
		paths = append(paths, file)
		present[file] = true
	}
	for _, p := range l {
		if p.Standard || p.Dir == "" || c.immutable(p.Dir) {
			continue
		}
		paths = append(paths, p.Dir)
		entries, err := os.ReadDir(p.Dir)
		if err != nil {
			return nil, false
		}
		for _, e := range entries {
			if !e.IsDir() {
				paths = append(paths, filepath.Join(p.Dir, e.Name()))
			}
		}
		for _, f := range p.EmbedFiles {
			paths = append(paths, filepath.Join(p.Dir, f))
		}
		if p.Module != nil && p.Module.GoMod != "" {
			paths = append(paths, p.Module.GoMod)
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	recent := time.Now().Add(-settleTime).UnixNano()
	stamps := make([]stamp, 0, len(paths))
	for _, path := range paths {
		s, err := stampOf(path, present[path])
		if err != nil || s.ModTime > recent {
			return nil, false
		}
		stamps = append(stamps, s)
	}
	return stamps, true
}

// immutable reports whether dir lies in the module cache, whose folders
// never change once written.
func (c *cache) immutable(dir string) bool {
	rel, err := filepath.Rel(c.modCache, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// stampOf stamps path now; present asks only whether it exists.
func stampOf(path string, present bool) (stamp, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return stamp{Path: path, Absent: true}, nil
	case err != nil:
		return stamp{}, err
	case present:
		return stamp{Path: path, Present: true}, nil
	}
	return stamp{Path: path, Size: fi.Size(), Mode: uint32(fi.Mode()), ModTime: fi.ModTime().UnixNano()}, nil
}
