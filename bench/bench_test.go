// Package bench measures what fentrygen costs, each figure against a named
// baseline in the same run (bench/run prints the ratios):
//
//   - BenchmarkRelocate (resolving every member path and argument slot of
//     the connwatch probes against a kernel's BTF) against
//     BenchmarkBuildBaseline (running the stubs to build the instructions);
//   - BenchmarkGenerate (build the model from BTF and emit the file) against
//     BenchmarkLoadBaseline (loading the package);
//   - BenchmarkFentrygen and BenchmarkFentrygenUncached (the command, as go
//     generate runs it, with its cache of export listings warm and off)
//     against BenchmarkBpf2go (bpf2go and clang -O2 on the C twin), in time
//     and peak memory;
//   - TestInstructions: every example program's instructions against clang
//     -O2 of its C twin, or libbpf-tools' own object for ports.
package bench

import (
	"os"
	"path/filepath"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/example/connwatch"
	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/load"
	"github.com/fentrygen/fentrygen/runtime"
)

// kernel is the BTF relocation runs against: the running kernel's when
// readable (the real case), else the embedded snapshot.
func kernel(b *testing.B) runtime.Target {
	b.Helper()
	if _, err := os.Stat(fbtf.KernelPath); err == nil {
		spec, err := fbtf.LoadFile(fbtf.KernelPath)
		if err != nil {
			b.Fatal(err)
		}
		return runtime.Target{Spec: spec, Name: "host"}
	}
	spec, err := fbtf.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	return runtime.Target{Spec: spec, Name: "embedded"}
}

func BenchmarkBuildBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range connwatch.Programs() {
			if _, err := p.Instructions(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkRelocate(b *testing.B) {
	target := kernel(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range connwatch.Programs() {
			if _, err := p.Spec(target); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func loadConnwatch(b *testing.B) *gen.Input {
	b.Helper()
	inputs, diags, err := load.Packages(load.Config{Dir: filepath.Join("..", "example", "connwatch")})
	if err != nil || len(inputs) != 1 {
		b.Fatal(err, diags)
	}
	return inputs[0]
}

func BenchmarkLoadBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		loadConnwatch(b)
	}
}

func BenchmarkGenerate(b *testing.B) {
	in := loadConnwatch(b)
	spec, err := cbtf.LoadSpec(filepath.Join("..", "example", "connwatch", "fentrygen.btf"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		model, diags := gen.Build(in, spec, gen.Options{})
		if model == nil {
			b.Fatal(diags)
		}
		if _, err := gen.Emit(model); err != nil {
			b.Fatal(err)
		}
	}
}
