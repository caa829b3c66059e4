package runtime

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"

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
}

// Declared is a package-level map declaration: a [Hash], [Array],
// [Global], histogram or [Ring].
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
	closers    []io.Closer
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
	for _, p := range progs {
		info := p.Info()
		if fn, ok := opts.Retarget[info.Name]; ok {
			p = p.retarget(fn)
			info = p.Info()
		}
		if _, dup := spec.Programs[info.Name]; dup {
			return nil, fmt.Errorf("two programs named %s", info.Name)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Maps())) {
			if err := addMap(name, p.Maps()[name]); err != nil {
				return nil, fmt.Errorf("program %s: %w", info.Name, err)
			}
		}
		ps, err := p.Spec(opts.Target)
		if err != nil {
			return nil, err
		}
		spec.Programs[info.Name] = ps
		infos[info.Name] = info
	}
	for name := range opts.Retarget {
		if _, ok := infos[name]; !ok {
			return nil, fmt.Errorf("retarget: no program %s (have %s)", name, strings.Join(slices.Sorted(maps.Keys(infos)), ", "))
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Cache: kernelBTF})
	if err != nil {
		return nil, collectionError(infos, opts.Target, err, opts.VerifierLines)
	}
	objs := &Objects{Target: opts.Target, Collection: coll, Programs: coll.Programs, Maps: coll.Maps, Links: map[string]link.Link{}}
	defer func() {
		if err != nil {
			objs.Close()
		}
	}()
	if opts.NoAttach {
		return objs, nil
	}
	for _, name := range slices.Sorted(maps.Keys(infos)) {
		info := infos[name]
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[name], AttachType: info.Kind.AttachType()})
		if err != nil {
			return nil, attachError(info, opts.Target, err)
		}
		objs.Links[name] = l
	}
	return objs, nil
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

// retarget is a copy of p attached to fn (MODULE:FUNC for a module's).
func (p *Program) retarget(fn string) *Program {
	q := *p
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
