package btf_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/internal/testmod"
	"github.com/fentrygen/fentrygen/load"
)

// The mutation test: flip, set and cut bytes of the committed snapshots,
// deterministically from a seed, and run everything that reads BTF on each
// mutant: the loader, every query of this package, Snapshot, and the
// generator on probe packages. A crash is a failure naming the seed; the
// inputs found go to testdata/badbtf (badbtf_test.go). scripts/mutate-btf
// runs many more mutants, and survives crashes that kill the process
// (stack overflows) or hangs.
var (
	mutants        = flag.Int("mutants", 200, "how many BTF mutants TestMutate runs")
	mutateSeed     = flag.Uint64("mutate-seed", 1, "seed of TestMutate's first mutant; mutant i has seed mutate-seed+i")
	mutateProgress = flag.String("mutate-progress", "", "`file` TestMutate writes each mutant's seed to before running it (names the culprit when the process dies)")
	mutateSave     = flag.String("mutate-save", "", "`dir` TestMutate writes failing mutants to, as seed-N.btf")
	mutateWrite    = flag.Bool("mutate-write", false, "TestMutate only writes the mutants to -mutate-save, running nothing")
	mutateSlow     = flag.Duration("mutate-slow", 0, "crash (with every goroutine's stack) when one mutant takes longer than this; 0 never (unit tests have no wall-clock limits; scripts/mutate-btf sets it)")
)

// snapshotPaths are the committed snapshots the mutants are made from,
// relative to this package.
var snapshotPaths = []string{
	filepath.Join("..", "testdata", "btf", "vmlinux-min.btf"),
	"default.btf",
	filepath.Join("..", "example", "argwatch", "fentrygen.btf"),
	filepath.Join("..", "example", "connwatch", "fentrygen.btf"),
}

// probeFiles are the packages the generator runs on: each snapshot gets
// those that generate cleanly from it.
var probeFiles = map[string][]byte{
	"conn/probes.go": []byte(`package conn

//fentry:tcp_v4_connect args=sk,uaddr:sockaddr_in depth=2
func onConnect(p *OnConnect) {}

//fexit:tcp_v4_connect args=sk ret
func onConnectExit(p *OnConnectExit) {}

// fmod_ret:security_socket_connect args=sock,address:sockaddr_in depth=2
func deny(p *Deny) {}
`),
	"mm/probes.go": []byte(`package mm

//fentry:do_mmap
func onMmap(p *OnMmap) {}

//fexit:from_kuid_munged args=kuid ret
func onUid(p *OnUid) {}
`),
	"wide/probes.go": []byte(`package wide

//fentry:tcp_v6_connect args=uaddr:sockaddr_in6
func onConnect6(p *OnConnect6) {}

//fentry:tcp_sendmsg args=size
func onSend(p *OnSend) {}

//fexit:security_file_open ret depth=2
func onOpen(p *OnOpen) {}

//fentry:vfs_read args=count,pos
func onRead(p *OnRead) {}

//fentry:do_unlinkat
func onUnlink(p *OnUnlink) {}

//fentry:tcp_close args=timeout
func onClose(p *OnClose) {}
`),
}

// corpus is one snapshot with what the pipeline asks of it.
type corpus struct {
	name  string
	blob  []byte
	types []rawType
	// referrers[id] are the indexes into types of the types referring to id.
	referrers map[uint32][]int
	funcs     []string
	// paths are member paths that resolve in the original, as type and path.
	paths  [][2]string
	inputs []*gen.Input
}

var (
	probesOnce sync.Once
	probes     map[string]*gen.Input
	probesErr  error
)

// probeInputs loads the probe packages once per test binary: those of the
// snapshots and of the hand-built files of testdata/badbtf, by import path.
func probeInputs(t *testing.T) map[string]*gen.Input {
	t.Helper()
	probesOnce.Do(func() {
		files := maps.Clone(probeFiles)
		maps.Copy(files, badProbeFiles())
		dir := testmod.Write(t, files)
		var inputs []*gen.Input
		var diags gen.Diagnostics
		inputs, diags, probesErr = load.Packages(load.Config{Dir: dir, Patterns: []string{"./..."}})
		if probesErr == nil && diags.HasErrors() {
			probesErr = diags
		}
		probes = map[string]*gen.Input{}
		for _, in := range inputs {
			probes[in.PkgPath] = in
		}
		if probesErr == nil && len(probes) != len(files) {
			probesErr = fmt.Errorf("%d probe packages loaded, want %d", len(probes), len(files))
		}
	})
	require.NoError(t, probesErr)
	return probes
}

// loadCorpora reads the snapshots (once each, by content) and what resolves
// in them.
func loadCorpora(t *testing.T) []*corpus {
	t.Helper()
	inputs := probeInputs(t)
	var out []*corpus
	seen := map[[32]byte]*corpus{}
	for _, path := range snapshotPaths {
		blob, err := os.ReadFile(path)
		require.NoError(t, err)
		sum := sha256.Sum256(blob)
		if c, ok := seen[sum]; ok {
			c.name += "=" + filepath.Base(path)
			continue
		}
		spec, err := fbtf.LoadFile(path)
		require.NoError(t, err)
		c := &corpus{name: path, blob: blob}
		c.types, err = parseRaw(blob)
		require.NoError(t, err, path)
		c.referrers = map[uint32][]int{}
		for i, rt := range c.types {
			for _, ref := range rt.refs {
				id := binary.LittleEndian.Uint32(blob[ref:])
				c.referrers[id] = append(c.referrers[id], i)
			}
		}
		for typ, err := range spec.All() {
			require.NoError(t, err)
			switch v := typ.(type) {
			case *cbtf.Func:
				c.funcs = append(c.funcs, v.Name)
			case *cbtf.Struct, *cbtf.Union:
				c.paths = append(c.paths, memberPaths(typ)...)
			}
		}
		for _, file := range slices.Sorted(maps.Keys(probeFiles)) {
			in := inputs["example.com/probes/"+filepath.Dir(file)]
			if model, diags := gen.Build(in, spec, gen.Options{}); model != nil && !diags.HasErrors() {
				c.inputs = append(c.inputs, in)
			}
		}
		require.NotEmpty(t, c.inputs, "no probe package generates from %s", path)
		seen[sum] = c
		out = append(out, c)
	}
	return out
}

// memberPaths lists paths from the named composite t: its members, one
// level into embedded composites, through pointers, and array elements.
func memberPaths(t cbtf.Type) [][2]string {
	name := t.TypeName()
	if name == "" {
		return nil
	}
	var out [][2]string
	for _, m := range fbtf.VisibleMembers(t) {
		out = append(out, [2]string{name, m.Name})
		switch u := cbtf.UnderlyingType(m.Type).(type) {
		case *cbtf.Struct, *cbtf.Union:
			for _, inner := range fbtf.VisibleMembers(u) {
				out = append(out, [2]string{name, m.Name + "." + inner.Name})
			}
		case *cbtf.Pointer:
			for _, inner := range fbtf.VisibleMembers(cbtf.UnderlyingType(u.Target)) {
				out = append(out, [2]string{name, m.Name + "." + inner.Name})
			}
		case *cbtf.Array:
			if u.Nelems > 0 {
				out = append(out, [2]string{name, m.Name + "[" + strconv.Itoa(int(u.Nelems-1)) + "]"})
			}
		}
	}
	// A near miss exercises the suggestions.
	out = append(out, [2]string{name, "zz_nope"})
	return out
}

// rawType is one type record of a raw little-endian BTF blob: its ID, the
// offset of its record and of its fields that hold type IDs.
type rawType struct {
	id   uint32
	off  int
	refs []int
	// names are the offsets of its name fields (type, members, parameters).
	names []int
}

// parseRaw finds the type records of a raw BTF blob.
func parseRaw(blob []byte) ([]rawType, error) {
	le := binary.LittleEndian
	if len(blob) < 24 || le.Uint16(blob) != 0xeb9f {
		return nil, fmt.Errorf("not little-endian raw BTF")
	}
	hdr := int(le.Uint32(blob[4:]))
	start := hdr + int(le.Uint32(blob[8:]))
	end := start + int(le.Uint32(blob[12:]))
	if end > len(blob) {
		return nil, fmt.Errorf("type section out of bounds")
	}
	var out []rawType
	for off, id := start, uint32(1); off < end; id++ {
		if off+12 > end {
			return nil, fmt.Errorf("truncated type %d", id)
		}
		info := le.Uint32(blob[off+4:])
		kind, vlen := int(info>>24&0x1f), int(info&0xffff)
		rt := rawType{id: id, off: off, names: []int{off}}
		data := 0
		switch kind {
		case 1, 14, 17: // int, var, decl_tag
			data = 4
		case 2, 8, 9, 10, 11, 12, 18: // ptr, typedef, volatile, const, restrict, func, type_tag
			rt.refs = append(rt.refs, off+8)
		case 3: // array: type, index type, nelems
			data = 12
			rt.refs = append(rt.refs, off+12, off+16)
		case 4, 5: // struct, union: name, type, offset
			data = 12 * vlen
			for i := range vlen {
				rt.names = append(rt.names, off+12+12*i)
				rt.refs = append(rt.refs, off+12+12*i+4)
			}
		case 6: // enum
			data = 8 * vlen
		case 13: // func_proto: return; name, type per parameter
			data = 8 * vlen
			rt.refs = append(rt.refs, off+8)
			for i := range vlen {
				rt.names = append(rt.names, off+12+8*i)
				rt.refs = append(rt.refs, off+12+8*i+4)
			}
		case 15: // datasec: type, offset, size
			data = 12 * vlen
			for i := range vlen {
				rt.refs = append(rt.refs, off+12+12*i)
			}
		case 19: // enum64
			data = 12 * vlen
		}
		if kind == 14 || kind == 17 {
			rt.refs = append(rt.refs, off+8)
		}
		out = append(out, rt)
		off += 12 + data
	}
	return out, nil
}

// mutate makes mutant seed: one to three byte flips, byte or word sets,
// type references pointed elsewhere (at the type itself, at a type
// referring to it, or anywhere: loops of every kind), name offsets moved
// or cuts, in one of corpora. It says what it did.
func mutate(corpora []*corpus, seed uint64) (*corpus, []byte, string) {
	r := rand.New(rand.NewPCG(seed, 0x6274666d75746174))
	c := corpora[r.IntN(len(corpora))]
	blob := bytes.Clone(c.blob)
	le := binary.LittleEndian
	strLen := int(le.Uint32(blob[20:]))
	var did []string
	for range 1 + r.IntN(3) {
		if len(blob) < 8 {
			break
		}
		switch op := r.IntN(20); {
		case op < 3:
			i, bit := r.IntN(len(blob)), r.IntN(8)
			blob[i] ^= 1 << bit
			did = append(did, fmt.Sprintf("flip %d.%d", i, bit))
		case op < 6:
			i := r.IntN(len(blob))
			v := []byte{0, 1, 0x7f, 0x80, 0xff, byte(r.IntN(256))}[r.IntN(6)]
			blob[i] = v
			did = append(did, fmt.Sprintf("set %d=%#x", i, v))
		case op < 9:
			i := r.IntN(len(blob)-3) &^ 3
			v := []uint32{0, 1, 2, 0x7f, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, uint32(r.IntN(len(c.types) + 2))}[r.IntN(10)]
			le.PutUint32(blob[i:], v)
			did = append(did, fmt.Sprintf("set32 %d=%#x", i, v))
		case op < 17:
			// Point a type reference at the type itself, at a type that
			// refers to it, or anywhere: cycles of every kind.
			rt := c.types[r.IntN(len(c.types))]
			if len(rt.refs) == 0 || rt.refs[len(rt.refs)-1]+4 > len(blob) {
				continue
			}
			ref := rt.refs[r.IntN(len(rt.refs))]
			var to uint32
			switch k := r.IntN(10); {
			case k < 4:
				to = rt.id
			case k < 7 && len(c.referrers[rt.id]) > 0:
				refs := c.referrers[rt.id]
				to = c.types[refs[r.IntN(len(refs))]].id
			default:
				to = uint32(1 + r.IntN(len(c.types)))
			}
			le.PutUint32(blob[ref:], to)
			did = append(did, fmt.Sprintf("ref %d@%d=%d", rt.id, ref, to))
		case op < 18:
			rt := c.types[r.IntN(len(c.types))]
			at := rt.names[r.IntN(len(rt.names))]
			if at+4 > len(blob) || strLen == 0 {
				continue
			}
			to := uint32(r.IntN(strLen))
			le.PutUint32(blob[at:], to)
			did = append(did, fmt.Sprintf("name %d@%d=%d", rt.id, at, to))
		default:
			n := r.IntN(len(blob))
			blob = blob[:n]
			did = append(did, fmt.Sprintf("cut %d", n))
		}
	}
	return c, blob, strings.Join(did, ", ")
}

// outcome is what running the pipeline on one input gave.
type outcome struct {
	// loadErr is what fbtf.LoadBytes said (nil: accepted).
	loadErr error
	// parsed: cilium/ebpf parsed the blob, so the queries and the
	// generator ran on it, checked or not.
	parsed bool
	// panic is the crash, with its stage and stack.
	panic string
}

// pipeline runs on blob everything in fentrygen that reads BTF, with c's
// functions, member paths and probe packages. A crash is recovered into
// the outcome; a stack overflow kills the process and a hang never
// returns, so the caller records which input it runs first.
func pipeline(name string, blob []byte, c *corpus) (o outcome) {
	// What to sample depends on the input only.
	sum := sha256.Sum256(blob)
	pick := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:]), 1))
	stage := "load"
	defer func() {
		if r := recover(); r != nil {
			o.panic = fmt.Sprintf("%s: panic: %v\n%s", stage, r, debug.Stack())
		}
	}()
	_, o.loadErr = fbtf.LoadBytes(name, blob)
	// The queries must be safe on whatever cilium/ebpf parses, checked or
	// not: run them on the unchecked spec.
	stage = "parse"
	raw, err := cbtf.LoadSpecFromReader(bytes.NewReader(blob))
	if err != nil {
		return o
	}
	o.parsed = true
	stage = "check"
	fbtf.Check(raw)

	stage = "funcs"
	var resolved []string
	for _, fn := range c.funcs {
		if f, err := fbtf.ResolveFunc(raw, fn); err == nil {
			resolved = append(resolved, fn)
			f.Prototype()
			fbtf.SuggestSaves(f)
		}
		fbtf.Validate(raw, fn, nil)
		fbtf.ResolveFunc(raw, fn+"_x")
	}
	stage = "paths"
	for _, i := range pick.Perm(len(c.paths))[:min(len(c.paths), 150)] {
		fbtf.ResolveMember(raw, c.paths[i][0], c.paths[i][1])
	}
	var composites []string
	for typ, err := range raw.All() {
		if err != nil {
			break
		}
		stage = "ctype"
		fbtf.CType(typ)
		switch typ.(type) {
		case *cbtf.Struct, *cbtf.Union:
			stage = "visible"
			ms := fbtf.VisibleMembers(typ)
			stage = "walk"
			for _, m := range ms {
				fbtf.WalkMember(typ, m.Name)
			}
			fbtf.WalkMember(typ, "zz_nope")
			if n := typ.TypeName(); n != "" && len(composites) < 8 {
				composites = append(composites, n)
				stage = "lookup"
				fbtf.LookupComposite(raw, n)
			}
		}
	}
	stage = "snapshot"
	for _, depth := range []int{0, 2} {
		snap, err := fbtf.Snapshot(raw, fbtf.SnapshotOptions{Funcs: resolved, Types: composites, Depth: depth})
		if err == nil {
			fbtf.LoadBytes("snapshot", snap)
		}
	}
	in := c.inputs[pick.IntN(len(c.inputs))]
	stage = "gen.Build " + in.PkgPath
	model, _ := gen.Build(in, raw, gen.Options{})
	if model != nil {
		stage = "gen.Emit " + in.PkgPath
		gen.Emit(model)
	}
	return o
}

// TestMutate runs the pipeline on -mutants mutants of the snapshots.
func TestMutate(t *testing.T) {
	n := *mutants
	if testing.Short() {
		n = min(n, 50)
	}
	corpora := loadCorpora(t)
	if *mutateWrite {
		require.NotEmpty(t, *mutateSave, "-mutate-write needs -mutate-save")
		for i := range n {
			seed := *mutateSeed + uint64(i)
			c, blob, did := mutate(corpora, seed)
			require.NoError(t, os.WriteFile(filepath.Join(*mutateSave, fmt.Sprintf("seed-%d.btf", seed)), blob, 0o644))
			t.Logf("seed %d: %s of %s", seed, did, c.name)
		}
		return
	}
	defer debug.SetMaxStack(debug.SetMaxStack(64 << 20))
	if *mutateSlow > 0 {
		defer watchdog(*mutateSlow)()
	}
	var accepted, parsed int
	start := time.Now()
	for i := range n {
		seed := *mutateSeed + uint64(i)
		if *mutateProgress != "" {
			require.NoError(t, os.WriteFile(*mutateProgress, []byte(strconv.FormatUint(seed, 10)+"\n"), 0o644))
		}
		c, blob, did := mutate(corpora, seed)
		current.Store(seed)
		o := pipeline(fmt.Sprintf("seed-%d.btf", seed), blob, c)
		current.Store(0)
		if o.loadErr == nil {
			accepted++
		}
		if o.parsed {
			parsed++
		}
		if o.panic != "" {
			t.Errorf("seed %d (%s of %s) crashed in %s", seed, did, c.name, o.panic)
			if *mutateSave != "" {
				require.NoError(t, os.WriteFile(filepath.Join(*mutateSave, fmt.Sprintf("seed-%d.btf", seed)), blob, 0o644))
			}
		}
	}
	t.Logf("%d mutants (seeds %d..%d) in %v: %d accepted by the loader, %d parsed by cilium/ebpf and run through the queries and the generator",
		n, *mutateSeed, *mutateSeed+uint64(n)-1, time.Since(start).Round(time.Millisecond), accepted, parsed)
}

// current is the seed of the mutant running, for the watchdog.
var current atomic.Uint64

// watchdog crashes the process, printing every goroutine's stack, when one
// mutant runs longer than limit. Only scripts/mutate-btf turns it on.
func watchdog(limit time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		var seed uint64
		var since time.Time
		tick := time.NewTicker(limit / 10)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				s := current.Load()
				if s != seed {
					seed, since = s, now
				} else if s != 0 && now.Sub(since) > limit {
					debug.SetTraceback("all")
					panic(fmt.Sprintf("mutant seed %d ran for more than %v", s, limit))
				}
			}
		}
	}()
	return func() { close(done) }
}
