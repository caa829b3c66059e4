package runtime

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// errENOTSUPP is the kernel-internal ENOTSUPP (524) that attaching returns
// when the architecture has no BPF trampoline.
const errENOTSUPP = syscall.Errno(524)

// Options tunes [Load] and [LoadPackage].
type Options struct {
	// Target is the kernel whose BTF resolves member paths; zero means the
	// running kernel ([KernelTarget]).
	Target Target
	// NoAttach loads the programs (so the verifier judges them) without
	// attaching them.
	NoAttach bool
	// VerifierLines is how many of the verifier's last lines a rejection
	// error carries; 0 means 20.
	VerifierLines int
	// Retarget attaches programs, by name, to another kernel function than
	// their annotation's (MODULE:FUNC for a module's). Arguments are found
	// again by name there, so a probe that reads none (a latency probe)
	// fits any function.
	Retarget map[string]string
	// Only loads just the programs named (all when empty); the package's
	// maps are created all the same.
	Only []string
	// SessionPair loads fsession probes as fentry+fexit pairs even where
	// the kernel has fsession, to compare the two.
	SessionPair bool
	// PerFunction loads multi-function probes as one program and link per
	// function even where the kernel has tracing multi-links.
	PerFunction bool
}

// Declared is a package-level map declaration: a [Hash], [Array],
// [Global], histogram, [StackTrace] or [Ring].
type Declared interface {
	specs() map[string]*ebpf.MapSpec
}

func (d *mapDecl) specs() map[string]*ebpf.MapSpec {
	if d.spec == nil {
		return nil
	}
	return map[string]*ebpf.MapSpec{d.name: d.spec}
}

func (r *Ring) specs() map[string]*ebpf.MapSpec { return r.Specs() }

// Objects are loaded programs, their maps, links and readers: one
// ebpf.Collection. Close releases every file descriptor.
type Objects struct {
	Target     Target
	Collection *ebpf.Collection
	Programs   map[string]*ebpf.Program
	Maps       map[string]*ebpf.Map
	Links      map[string]link.Link
	// Mechanisms says how each probe got into the kernel, by program
	// name. An fsession probe loaded as a pair has two programs and two
	// links: NAME (fentry) and NAME.exit (fexit); a multi-function probe
	// with one link per function has NAME.FUNCTION for each.
	Mechanisms map[string]Mechanism
	// Targets are the functions each multi-function probe was attached
	// to, by probe name, sorted: FuncIndex is a position in it.
	Targets map[string][]string
	// Notes say which functions the multi-function probes' names and
	// patterns left out on this kernel, and why.
	Notes []string
	// Attached is how long attaching every link took.
	Attached time.Duration
	// symbols are the addresses of the Targets, read when TargetOf is
	// first asked.
	symbols map[string][]uint64
	closers []io.Closer
}

// Load relocates, loads and (unless opts.NoAttach) attaches progs as one
// collection with the maps they use: programs that use a map of one name
// share it. On any error everything already created is closed.
func Load(opts Options, progs ...*Program) (*Objects, error) {
	return LoadPackage(opts, progs)
}

// LoadPackage is [Load] for a package's programs and its declared maps,
// which exist even when no program uses them. Generated Load functions call
// it; maps of other packages are never shared.
func LoadPackage(opts Options, progs []*Program, decls ...Declared) (_ *Objects, err error) {
	if opts.Target.Spec == nil {
		if opts.Target, err = KernelTarget(); err != nil {
			return nil, err
		}
	}
	if opts.VerifierLines == 0 {
		opts.VerifierLines = 20
	}
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
	addMap := func(name string, m *ebpf.MapSpec) error {
		if old, ok := spec.Maps[name]; ok && !sameMap(old, m) {
			return fmt.Errorf("two different maps called %s", name)
		}
		spec.Maps[name] = m
		return nil
	}
	for _, d := range decls {
		for _, name := range slices.Sorted(maps.Keys(d.specs())) {
			if err := addMap(name, d.specs()[name]); err != nil {
				return nil, err
			}
		}
	}
	progs, err = only(progs, opts.Only)
	if err != nil {
		return nil, err
	}
	infos := map[string]Info{}
	mechanisms := map[string]Mechanism{}
	// natives are fsession programs: loaded after the collection (which
	// cilium/ebpf cannot load them in), with its maps.
	natives := map[string]*ebpf.ProgramSpec{}
	add := func(p *Program, into map[string]*ebpf.ProgramSpec) error {
		info := p.Info()
		if _, dup := infos[info.Name]; dup {
			return fmt.Errorf("two programs named %s", info.Name)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Maps())) {
			if err := addMap(name, p.Maps()[name]); err != nil {
				return fmt.Errorf("program %s: %w", info.Name, err)
			}
		}
		ps, err := p.Spec(opts.Target)
		if err != nil {
			return err
		}
		into[info.Name] = ps
		infos[info.Name] = info
		return nil
	}
	targets := map[string][]string{}
	var notes []string
	for _, p := range progs {
		info := p.Info()
		if fn, ok := opts.Retarget[info.Name]; ok {
			if p.multi != nil {
				return nil, fmt.Errorf("retarget: %s attaches to many functions (%s)", info.Name, strings.Join(info.Targets, ","))
			}
			p = p.retarget(fn)
			info = p.Info()
		}
		if _, dup := mechanisms[info.Name]; dup {
			return nil, fmt.Errorf("two programs named %s", info.Name)
		}
		pl, err := plan(opts, p)
		if err != nil {
			return nil, err
		}
		mechanisms[info.Name] = pl.mech
		notes = append(notes, pl.notes...)
		if pl.targets != nil {
			targets[info.Name] = pl.targets
		}
		for _, q := range pl.progs {
			if err := add(q, spec.Programs); err != nil {
				return nil, err
			}
		}
		if pl.native != nil {
			if err := add(pl.native, natives); err != nil {
				return nil, err
			}
		}
	}
	for name := range opts.Retarget {
		if _, ok := mechanisms[name]; !ok {
			return nil, fmt.Errorf("retarget: no program %s (have %s)", name, strings.Join(slices.Sorted(maps.Keys(mechanisms)), ", "))
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Cache: kernelBTF})
	if err != nil {
		return nil, collectionError(infos, opts.Target, err, opts.VerifierLines)
	}
	objs := &Objects{Target: opts.Target, Collection: coll, Programs: coll.Programs, Maps: coll.Maps, Links: map[string]link.Link{},
		Mechanisms: mechanisms, Targets: targets, Notes: notes}
	defer func() {
		if err != nil {
			objs.Close()
		}
	}()
	for _, name := range slices.Sorted(maps.Keys(natives)) {
		prog, err := loadNative(natives[name], infos[name], coll.Maps)
		if err != nil {
			return nil, rawError(infos[name], opts.Target, err, opts.VerifierLines)
		}
		coll.Programs[name] = prog
	}
	if opts.NoAttach {
		return objs, nil
	}
	start := time.Now()
	defer func() { objs.Attached = time.Since(start) }()
	for _, name := range slices.Sorted(maps.Keys(infos)) {
		info := infos[name]
		var l link.Link
		switch {
		case info.Kind == Fsession:
			l, err = link.AttachRawLink(link.RawLinkOptions{Program: coll.Programs[name], Attach: AttachTraceFsession})
		case len(info.Targets) > 0:
			l, err = attachMulti(coll.Programs[name], info, targets[name])
		default:
			l, err = link.AttachTracing(link.TracingOptions{Program: coll.Programs[name], AttachType: info.Kind.AttachType()})
		}
		if err != nil {
			return nil, attachError(info, opts.Target, err)
		}
		objs.Links[name] = l
	}
	return objs, nil
}

// planned is a probe as LoadPackage loads it: how, the programs that go
// into the collection, the fsession program loaded after it, and for a
// multi-function probe the functions it attaches to and notes on those
// left out.
type planned struct {
	mech    Mechanism
	progs   []*Program
	native  *Program
	targets []string
	notes   []string
}

// plan decides how p is loaded on the running kernel.
func plan(opts Options, p *Program) (planned, error) {
	info := p.Info()
	switch {
	case info.Kind == Fsession:
		if err := p.Err(); err != nil {
			return planned{}, err
		}
		m, err := sessionMechanism(opts, info)
		if err != nil || m == SessionNative {
			return planned{mech: m, native: p}, err
		}
		entry, exit, err := p.Halves()
		return planned{mech: m, progs: []*Program{entry, exit}}, err
	case p.multi != nil:
		if err := p.Err(); err != nil {
			return planned{}, err
		}
		fns, notes, err := loadTargets(opts.Target, info)
		if err != nil {
			return planned{}, err
		}
		m, err := multiMechanism(opts, info, fns[0])
		if err != nil {
			return planned{}, err
		}
		pl := planned{mech: m, targets: fns, notes: notes}
		if m == MultiLink {
			pl.progs = []*Program{p.withTargets(fns)}
			return pl, nil
		}
		pl.progs, err = p.PerFunction(fns)
		return pl, err
	}
	return planned{mech: Trampoline, progs: []*Program{p}}, nil
}

// loadTargets resolves a multi-function probe's Targets on the running
// kernel: as [ResolveTargets], leaving out functions the kernel cannot
// attach trampolines to (not in available_filter_functions, when
// readable) and, before Linux 6.6, those with more argument slots than
// x86-64 trampolines took.
func loadTargets(target Target, info Info) ([]string, []string, error) {
	fns, notes, err := ResolveTargets(target, info)
	if err != nil {
		return nil, nil, err
	}
	ftrace := ftraceFunctions()
	old := releaseBefore(KernelRelease(), 6, 6)
	var kept []string
	for _, fn := range fns {
		switch {
		case ftrace != nil && !ftrace[fn]:
			notes = append(notes, fmt.Sprintf("%s: %s skipped: not in available_filter_functions (notrace or inlined)", info.Name, fn))
			continue
		case old:
			if f, err := fbtf.ResolveFunc(target.Spec, fn); err == nil && f.NumSlots > fbtf.MaxSlotsX86Pre66 {
				notes = append(notes, fmt.Sprintf("%s: %s skipped: %d argument slots, and x86-64 kernels before 6.6 take %d", info.Name, fn, f.NumSlots, fbtf.MaxSlotsX86Pre66))
				continue
			}
		}
		kept = append(kept, fn)
	}
	if len(kept) == 0 {
		return nil, notes, fmt.Errorf("probe %s: no function of %s that matches %s can be attached to%s", info.Name, target.Name, strings.Join(info.Targets, ","), noteList(notes))
	}
	return kept, notes, nil
}

// releaseBefore reports whether the kernel release (uname -r) is known and
// older than major.minor.
func releaseBefore(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma < major || ma == major && mi < minor
}

// attachMulti attaches the multi-link program prog to fns at once, the
// cookie of each its position (FuncIndex).
func attachMulti(prog *ebpf.Program, info Info, fns []string) (link.Link, error) {
	ids := make([]uint32, len(fns))
	cookies := make([]uint64, len(fns))
	for i, fn := range fns {
		id, err := targetID(fn)
		if err != nil {
			return nil, err
		}
		ids[i], cookies[i] = id, uint64(i)
	}
	fd, err := linkTracingMulti(prog, info.attachType(), ids, cookies)
	if err != nil {
		return nil, fmt.Errorf("tracing multi-link of %d functions: %w", len(fns), err)
	}
	return link.NewFromFD(fd)
}

// Mechanism says how the probe called name got into the kernel.
func (o *Objects) Mechanism(name string) Mechanism { return o.Mechanisms[name] }

// ProgramsOf are the programs that stand for the probe called name: its
// program; an fsession pair's fentry and fexit programs; a multi-function
// probe's multi-link program, or its program for each function, in the
// order of Targets(name).
func (o *Objects) ProgramsOf(name string) []*ebpf.Program {
	var keys []string
	switch o.Mechanisms[name] {
	case SessionPair:
		keys = []string{name, name + exitSuffix}
	case PerFunction:
		for _, fn := range o.Targets[name] {
			keys = append(keys, name+"."+fn)
		}
	default:
		keys = []string{name}
	}
	var out []*ebpf.Program
	for _, k := range keys {
		if p := o.Programs[k]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// TargetsOf are the functions the multi-function probe called name was
// attached to: FuncIndex is a position in it.
func (o *Objects) TargetsOf(name string) []string { return o.Targets[name] }

// loadNative loads the fsession program spec, whose instructions are
// relocated, with the collection's maps: BPF_PROG_LOAD issued here, with
// the BTF id of its target in the running kernel.
func loadNative(spec *ebpf.ProgramSpec, info Info, colMaps map[string]*ebpf.Map) (*ebpf.Program, error) {
	insns := slices.Clone(spec.Instructions)
	for i := range insns {
		ref := insns[i].Reference()
		if !insns[i].IsLoadFromMap() || ref == "" {
			continue
		}
		m, ok := colMaps[ref]
		if !ok {
			return nil, fmt.Errorf("no map %s", ref)
		}
		if err := insns[i].AssociateMap(m); err != nil {
			return nil, err
		}
	}
	id, err := targetID(info.Target)
	if err != nil {
		return nil, err
	}
	return loadRaw(rawProgram{Name: spec.Name, Attach: spec.AttachType, BTFID: id, Flags: spec.Flags, Insns: insns})
}

// only keeps the programs named in names (all when names is empty).
func only(progs []*Program, names []string) ([]*Program, error) {
	if len(names) == 0 {
		return progs, nil
	}
	byName := map[string]*Program{}
	for _, p := range progs {
		byName[p.Info().Name] = p
	}
	var out []*Program
	for _, name := range names {
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("only: no program %s (have %s)", name, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		}
		out = append(out, p)
	}
	return out, nil
}

// retarget is a copy of p attached to fn (MODULE:FUNC for a module's); an
// fsession program is built again for fn.
func (p *Program) retarget(fn string) *Program {
	if s := p.sess; s != nil && s.as == buildNative {
		info := s.info
		info.Module, info.Target = fbtf.SplitTarget(fn)
		return NewSession(info, s.build)
	}
	q := *p
	if q.from == "" {
		q.from = q.info.Target
	}
	q.info.Module, q.info.Target = fbtf.SplitTarget(fn)
	return &q
}

// collectionError names the program the kernel refused and carries the
// verifier's last lines. A refusal by policy (EPERM) says so, without
// cilium/ebpf's guess that RLIMIT_MEMLOCK is too low (kernels since 5.11
// do not count BPF memory against it).
func collectionError(infos map[string]Info, target Target, err error, lines int) error {
	name := "?"
	for n, info := range infos {
		if strings.Contains(err.Error(), "program "+n+":") {
			name = n + " (" + info.SectionName() + ")"
		}
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("load program %s on %s: the kernel refused it: %w (tracing programs need root, or CAP_BPF with CAP_PERFMON, and some hosts forbid them by policy)", name, target.Name, unix.EPERM)
	}
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return fmt.Errorf("load on %s: %w", target.Name, err)
	}
	log := ve.Log
	if len(log) > lines {
		log = log[len(log)-lines:]
	}
	return fmt.Errorf("load program %s on %s: verifier rejected it: %w\nverifier log (last %d lines):\n\t%s",
		name, target.Name, ve.Cause, len(log), strings.Join(log, "\n\t"))
}

// rawError is collectionError for a program loaded by loadRaw.
func rawError(info Info, target Target, err error, lines int) error {
	name := info.Name + " (" + info.SectionName() + ")"
	var rle *rawLoadError
	if !errors.As(err, &rle) {
		return fmt.Errorf("load program %s on %s: %w", name, target.Name, err)
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("load program %s on %s: the kernel refused it: %w (tracing programs need root, or CAP_BPF with CAP_PERFMON, and some hosts forbid them by policy)", name, target.Name, unix.EPERM)
	}
	log := rle.Log
	if len(log) > lines {
		log = log[len(log)-lines:]
	}
	return fmt.Errorf("load program %s on %s: verifier rejected it: %w\nverifier log (last %d lines):\n\t%s",
		name, target.Name, rle.Errno, len(log), strings.Join(log, "\n\t"))
}

func attachError(info Info, target Target, err error) error {
	what := fbtf.JoinTarget(info.Module, info.Target)
	// cilium/ebpf turns the kernel's ENOTSUPP into ebpf.ErrNotSupported.
	if errors.Is(err, errENOTSUPP) || errors.Is(err, ebpf.ErrNotSupported) {
		if fn, _, ferr := target.locate(info); ferr == nil && !info.Kind.Tracepoint() && fn.NumSlots > fbtf.MaxSlotsX86Pre66 {
			return fmt.Errorf("attach %s to %s on %s: %s takes %d argument slots and this kernel's BPF trampoline takes at most %d (x86-64 before Linux 6.6): %w",
				info.Kind, what, target.Name, info.Target, fn.NumSlots, fbtf.MaxSlotsX86Pre66, err)
		}
		return fmt.Errorf("attach %s to %s on %s: no BPF trampoline on this kernel/arch (ENOTSUPP): %w", info.Kind, what, target.Name, err)
	}
	return fmt.Errorf("attach %s to %s on %s: %w", info.Kind, what, target.Name, err)
}

// Map returns the loaded map called name.
func (o *Objects) Map(name string) (*ebpf.Map, error) {
	m, ok := o.Maps[name]
	if !ok {
		return nil, fmt.Errorf("no map %q (have %s)", name, strings.Join(slices.Sorted(maps.Keys(o.Maps)), ", "))
	}
	return m, nil
}

// track makes Close close c too.
func (o *Objects) track(c io.Closer) { o.closers = append(o.closers, c) }

// Close detaches and releases everything: links, readers, then programs
// and maps.
func (o *Objects) Close() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(o.Links)) {
		errs = append(errs, o.Links[name].Close())
	}
	for _, c := range o.closers {
		errs = append(errs, c.Close())
	}
	if o.Collection != nil {
		o.Collection.Close()
	}
	o.Links, o.Programs, o.Maps, o.closers, o.Collection = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
