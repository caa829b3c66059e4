package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/testmod"
)

// goBuild builds a command into dir and returns its path.
func goBuild(b *testing.B, dir, pkg string) string {
	b.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = testmod.Root(b)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// measureEnv tells the bench binary, re-executed, to run one command and
// print its peak resident memory instead of running tests.
const measureEnv = "FENTRYGEN_BENCH_MEASURE"

// TestMain serves the re-executed measuring binary (see runMeasured).
func TestMain(m *testing.M) {
	if os.Getenv(measureEnv) == "1" {
		os.Exit(measure(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// measure runs argv and prints its peak resident memory in KB. Linux
// carries a process's high-water mark across exec, and the go command
// starts children with vfork, so a command started straight from the bench
// process would report the bench's own memory; started from this small
// process it reports its own (with its children's: clang under bpf2go, the
// go command under fentrygen).
func measure(argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "no resource usage")
		return 1
	}
	fmt.Println(ru.Maxrss)
	return 0
}

// runMeasured runs argv b.N times in dir, each through a re-executed bench
// binary, and reports the largest peak resident memory as peak-KB.
func runMeasured(b *testing.B, dir string, argv ...string) {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var peak int64
	for b.Loop() {
		cmd := exec.Command(self, argv...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), measureEnv+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("%v: %v\n%s", argv, err, stderr.Bytes())
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			b.Fatalf("%v: peak memory %q: %v", argv, out, err)
		}
		peak = max(peak, kb)
	}
	b.ReportMetric(float64(peak), "peak-KB")
}

// BenchmarkFentrygen runs the fentrygen command on example/connwatch as go
// generate does when run again: find the package, type-check it against
// its imports' export data (the go command's listing of it cached from the
// first run), resolve BTF, settle the accessors, emit and compare (the file
// is not rewritten when unchanged).
func BenchmarkFentrygen(b *testing.B) {
	dir := filepath.Join(testmod.Root(b), "example", "connwatch")
	bin := goBuild(b, b.TempDir(), "./cmd/fentrygen")
	root := b.TempDir()
	b.Setenv("FENTRYGEN_CACHE", root)
	cache := filepath.Join(root, "exports")
	// The first run fills the cache; files changed within two seconds are
	// not trusted, so a fresh checkout may need a second.
	for try := 0; ; try++ {
		runOnce(b, dir, bin)
		if entries, _ := os.ReadDir(cache); len(entries) > 0 {
			break
		}
		if try == 1 {
			b.Fatal("fentrygen did not cache the export listing")
		}
		time.Sleep(3 * time.Second)
	}
	runMeasured(b, dir, bin)
}

// BenchmarkFentrygenUncached is BenchmarkFentrygen with the cache off: the
// first run after a change to an imported package, go.mod or the
// toolchain, which asks the go command for its export listing.
func BenchmarkFentrygenUncached(b *testing.B) {
	b.Setenv("FENTRYGEN_NOCACHE", "1")
	runMeasured(b, filepath.Join(testmod.Root(b), "example", "connwatch"), goBuild(b, b.TempDir(), "./cmd/fentrygen"))
}

// runOnce runs argv in dir.
func runOnce(b *testing.B, dir string, argv ...string) {
	b.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", argv, err, msg)
	}
}

// BenchmarkBpf2go runs bpf2go (clang -O2, then the Go wrapper) on
// connwatch's C twin with a vmlinux.h of the running kernel: the route a
// user of C takes to the same probes.
func BenchmarkBpf2go(b *testing.B) {
	for _, tool := range []string{"clang", "llvm-strip", "bpftool"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("!!! NOT RUN: %s not found (apt-get install clang llvm libbpf-dev bpftool; .ci/run does)", tool)
		}
	}
	if _, err := os.Stat(fbtf.KernelPath); err != nil {
		b.Skipf("!!! NOT RUN: no %s to make vmlinux.h from", fbtf.KernelPath)
	}
	dir := b.TempDir()
	bin := goBuild(b, dir, "github.com/cilium/ebpf/cmd/bpf2go")
	vmlinux, err := exec.Command("bpftool", "btf", "dump", "file", fbtf.KernelPath, "format", "c").Output()
	if err != nil {
		b.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("twins", "connwatch.bpf.c"))
	if err != nil {
		b.Fatal(err)
	}
	for name, data := range map[string][]byte{"vmlinux.h": vmlinux, "connwatch.bpf.c": src} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	runMeasured(b, dir, bin, "-go-package", "connwatch", "-target", "amd64", "Connwatch", "connwatch.bpf.c", "--", "-I"+dir)
}
