package runtime

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

// errENOTSUPP is the kernel-internal ENOTSUPP (524) that attaching returns
// when the architecture has no BPF trampoline.
const errENOTSUPP = syscall.Errno(524)

// Options tunes [Load].
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
}

// Objects are loaded programs, their maps and links. Close releases every
// file descriptor.
type Objects struct {
	Target   Target
	Programs map[string]*ebpf.Program
	Maps     map[string]*ebpf.Map
	Links    map[string]link.Link
}

// Load relocates, loads and (unless opts.NoAttach) attaches progs with
// link.AttachTracing. Maps with one name are shared. On any error
// everything already created is closed.
func Load(opts Options, progs ...*Program) (_ *Objects, err error) {
	if opts.Target.Spec == nil {
		if opts.Target, err = KernelTarget(); err != nil {
			return nil, err
		}
	}
	if opts.VerifierLines == 0 {
		opts.VerifierLines = 20
	}
	objs := &Objects{Target: opts.Target, Programs: map[string]*ebpf.Program{}, Maps: map[string]*ebpf.Map{}, Links: map[string]link.Link{}}
	defer func() {
		if err != nil {
			objs.Close()
		}
	}()
	for _, p := range progs {
		for _, name := range slices.Sorted(maps.Keys(p.Maps())) {
			spec := p.Maps()[name]
			if _, ok := objs.Maps[name]; ok {
				continue
			}
			m, err := ebpf.NewMap(spec)
			if err != nil {
				return nil, fmt.Errorf("create map %s: %w", name, err)
			}
			objs.Maps[name] = m
		}
	}
	for _, p := range progs {
		name := p.Info().Name
		if _, dup := objs.Programs[name]; dup {
			return nil, fmt.Errorf("two programs named %s", name)
		}
		spec, err := p.Spec(opts.Target)
		if err != nil {
			return nil, err
		}
		for i := range spec.Instructions {
			ins := &spec.Instructions[i]
			if ref := ins.Reference(); ref != "" && ins.IsLoadFromMap() {
				m, ok := objs.Maps[ref]
				if !ok {
					return nil, fmt.Errorf("program %s: no map %q declared", name, ref)
				}
				if err := ins.AssociateMap(m); err != nil {
					return nil, fmt.Errorf("program %s: map %s: %w", name, ref, err)
				}
			}
		}
		prog, err := ebpf.NewProgram(spec)
		if err != nil {
			return nil, loadError(p.Info(), opts.Target, err, opts.VerifierLines)
		}
		objs.Programs[name] = prog
		if opts.NoAttach {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: p.Info().Kind.AttachType()})
		if err != nil {
			return nil, attachError(p.Info(), opts.Target, err)
		}
		objs.Links[name] = l
	}
	return objs, nil
}

func loadError(info Info, target Target, err error, lines int) error {
	name := info.Name + " (" + info.SectionName() + ")"
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return fmt.Errorf("load program %s on %s: %w", name, target.Name, err)
	}
	log := ve.Log
	if len(log) > lines {
		log = log[len(log)-lines:]
	}
	return fmt.Errorf("load program %s on %s: verifier rejected it: %w\nverifier log (last %d lines):\n\t%s",
		name, target.Name, ve.Cause, len(log), strings.Join(log, "\n\t"))
}

func attachError(info Info, target Target, err error) error {
	// cilium/ebpf turns the kernel's ENOTSUPP into ebpf.ErrNotSupported.
	if errors.Is(err, errENOTSUPP) || errors.Is(err, ebpf.ErrNotSupported) {
		if fn, ferr := fbtf.ResolveFunc(target.Spec, info.Target); ferr == nil && fn.NumSlots > fbtf.MaxSlotsX86Pre66 {
			return fmt.Errorf("attach %s to %s on %s: %s takes %d argument slots and this kernel's BPF trampoline takes at most %d (x86-64 before Linux 6.6): %w",
				info.Kind, info.Target, target.Name, info.Target, fn.NumSlots, fbtf.MaxSlotsX86Pre66, err)
		}
		return fmt.Errorf("attach %s to %s on %s: no BPF trampoline on this kernel/arch (ENOTSUPP): %w", info.Kind, info.Target, target.Name, err)
	}
	return fmt.Errorf("attach %s to %s on %s: %w", info.Kind, info.Target, target.Name, err)
}

// Ringbuf opens a reader on the ring buffer called name.
func (o *Objects) Ringbuf(name string) (*ringbuf.Reader, error) {
	m, ok := o.Maps[name]
	if !ok {
		return nil, fmt.Errorf("no ring buffer %q (have %s)", name, strings.Join(slices.Sorted(maps.Keys(o.Maps)), ", "))
	}
	return ringbuf.NewReader(m)
}

// Close detaches and releases everything, links first.
func (o *Objects) Close() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(o.Links)) {
		errs = append(errs, o.Links[name].Close())
	}
	for _, name := range slices.Sorted(maps.Keys(o.Programs)) {
		errs = append(errs, o.Programs[name].Close())
	}
	for _, name := range slices.Sorted(maps.Keys(o.Maps)) {
		errs = append(errs, o.Maps[name].Close())
	}
	o.Links, o.Programs, o.Maps = nil, nil, nil
	return errors.Join(errs...)
}
