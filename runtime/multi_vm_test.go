package runtime_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

var (
	rwCalls, rwBytes, rwFlags, rwIPs, rwRets runtime.Hash[runtime.U32, runtime.U64]
)

func init() {
	for name, m := range map[string]*runtime.Hash[runtime.U32, runtime.U64]{"rw_calls": &rwCalls, "rw_bytes": &rwBytes, "rw_flags": &rwFlags, "rw_ips": &rwIPs, "rw_rets": &rwRets} {
		m.Declare(name, runtime.MapOptions{MaxEntries: 16})
	}
}

// multiLoad loads the two multi-function probes of the read/write test
// for this process: at entry the calls, the bytes asked for (count),
// file->f_flags and the function's address; at the return the bytes done.
func multiLoad(t *testing.T, perFunction bool) *runtime.Objects {
	t.Helper()
	pid := uint32(os.Getpid())
	info := runtime.Info{Name: "rw", Kind: runtime.Fentry, Targets: []string{"vfs_read", "vfs_write"}}
	entry := runtime.NewMulti(info, func(p *runtime.Program) {
		p.FilterTgid(pid)
		fn := runtime.Let(p, runtime.FuncIndex(p))
		rwCalls.Add(p, fn, runtime.Uint64(1))
		rwBytes.Add(p, fn, runtime.Arg[uint64](p, "count", 2))
		rwFlags.Update(p, fn, runtime.Field[uint32](runtime.ArgPtr(p, "file", 0, "file"), "f_flags").U64())
		rwIPs.Update(p, fn, runtime.FuncIP())
	})
	info.Name, info.Kind = "rw_exit", runtime.Fexit
	exit := runtime.NewMulti(info, func(p *runtime.Program) {
		p.FilterTgid(pid)
		rwRets.Add(p, runtime.FuncIndex(p), runtime.Ret[int64](p, 4).U64())
	})
	objs, err := runtime.Load(runtime.Options{PerFunction: perFunction}, entry, exit)
	require.NoError(t, err)
	return objs
}

// TestVMMultiReadWrite attaches one fentry and one fexit probe to vfs_read
// and vfs_write (a tracing multi-link each on 7.x, one link per function
// elsewhere, and on 7.x per function too) and checks, for this process's n
// reads of 3 bytes from /dev/zero and m writes of 5 to /dev/null, every
// count against what the process did: calls, bytes asked and done, the
// files' f_flags (fcntl F_GETFL) and the functions' addresses
// (/proc/kallsyms, through TargetOf).
func TestVMMultiReadWrite(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		const n, m = 300, 200
		multi := !strings.HasPrefix(runtime.KernelRelease(), "6.")
		zero, err := os.Open("/dev/zero")
		require.NoError(t, err)
		defer zero.Close()
		null, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
		require.NoError(t, err)
		defer null.Close()
		zeroFlags, err := unix.FcntlInt(zero.Fd(), unix.F_GETFL, 0)
		require.NoError(t, err)
		nullFlags, err := unix.FcntlInt(null.Fd(), unix.F_GETFL, 0)
		require.NoError(t, err)

		modes := []bool{false}
		if multi {
			modes = append(modes, true)
		}
		for _, perFunction := range modes {
			objs := multiLoad(t, perFunction)
			want, links := runtime.MultiLink, 2
			if perFunction || !multi {
				want, links = runtime.PerFunction, 4
			}
			assert.Equal(t, want, objs.Mechanism("rw"))
			assert.Equal(t, want, objs.Mechanism("rw_exit"))
			assert.Len(t, objs.Links, links)
			assert.Len(t, objs.ProgramsOf("rw"), links/2)
			require.Equal(t, []string{"vfs_read", "vfs_write"}, objs.TargetsOf("rw"))

			buf := make([]byte, 5)
			for range n {
				_, err := unix.Read(int(zero.Fd()), buf[:3])
				require.NoError(t, err)
			}
			for range m {
				_, err := unix.Write(int(null.Fd()), buf[:5])
				require.NoError(t, err)
			}
			get := func(name string, fn uint32) uint64 {
				mp, err := runtime.OpenMap[uint32, uint64](objs, name)
				require.NoError(t, err)
				v, ok, err := mp.Lookup(fn)
				require.NoError(t, err, "%s[%d]", name, fn)
				require.True(t, ok, "%s[%d]", name, fn)
				return v
			}
			read, write := uint32(0), uint32(1)
			assert.Equal(t, uint64(n), get("rw_calls", read), "%s: reads", want)
			assert.Equal(t, uint64(m), get("rw_calls", write), "%s: writes", want)
			assert.Equal(t, uint64(3*n), get("rw_bytes", read), "%s: bytes asked to read (count)", want)
			assert.Equal(t, uint64(5*m), get("rw_bytes", write), "%s: bytes asked to write", want)
			assert.Equal(t, uint64(3*n), get("rw_rets", read), "%s: bytes read (the return values)", want)
			assert.Equal(t, uint64(5*m), get("rw_rets", write), "%s: bytes written", want)
			assert.Equal(t, uint64(zeroFlags), get("rw_flags", read), "%s: /dev/zero's f_flags through file", want)
			assert.Equal(t, uint64(nullFlags), get("rw_flags", write), "%s: /dev/null's f_flags", want)
			for fn, name := range []string{"vfs_read", "vfs_write"} {
				got, err := objs.TargetOf("rw", get("rw_ips", uint32(fn)))
				require.NoError(t, err)
				assert.Equal(t, name, got, "%s: FuncIP of %s", want, name)
			}
			t.Logf("%s on %s: %d reads, %d writes counted (attached in %v)", want, runtime.KernelRelease(), n, m, objs.Attached)
			require.NoError(t, objs.Close())
		}
	})
}

var anyCalls runtime.Hash[runtime.U32, runtime.U64]

func init() { anyCalls.Declare("any_calls", runtime.MapOptions{MaxEntries: 256}) }

// attachable are up to n functions matching pattern that a trampoline can
// attach to here: in BTF, eligible, in available_filter_functions, and
// within the argument slots of this kernel's trampolines.
func attachable(t *testing.T, pattern string, n int) []string {
	t.Helper()
	target, err := runtime.KernelTarget()
	require.NoError(t, err)
	m, err := fbtf.MatchFuncs(target.Spec, []string{pattern}, false)
	require.NoError(t, err)
	data, err := os.ReadFile("/sys/kernel/tracing/available_filter_functions")
	require.NoError(t, err)
	ftrace := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		name, _, _ := strings.Cut(line, " ")
		ftrace[name] = true
	}
	var out []string
	for _, f := range m.Funcs {
		if ftrace[f.Name] && f.NumSlots <= fbtf.MaxSlotsX86Pre66 && len(out) < n {
			out = append(out, f.Name)
		}
	}
	require.Len(t, out, n, "functions matching %s here", pattern)
	return out
}

// TestVMAttach100 loads a counting fentry probe on 100 functions
// (security_* hooks, sorted) as a tracing multi-link (7.x) and as one link
// per function (every kernel), and reports how long loading and attaching
// took. Ground truth: both attach to exactly those 100, and the one the
// test then calls (security_file_open, through open(2)) counts its calls.
func TestVMAttach100(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		fns := attachable(t, "security_*", 100)
		require.Contains(t, fns, "security_file_open")
		open := slices.Index(fns, "security_file_open")
		multi := !strings.HasPrefix(runtime.KernelRelease(), "6.")
		modes := []bool{true}
		if multi {
			modes = []bool{false, true}
		}
		var results []string
		for _, perFunction := range modes {
			p := runtime.NewMulti(runtime.Info{Name: "any", Kind: runtime.Fentry, Targets: fns}, func(p *runtime.Program) {
				p.FilterTgid(uint32(os.Getpid()))
				anyCalls.Add(p, runtime.FuncIndex(p), runtime.Uint64(1))
			})
			start := time.Now()
			objs, err := runtime.Load(runtime.Options{PerFunction: perFunction}, p)
			require.NoError(t, err)
			total := time.Since(start)
			assert.Equal(t, fns, objs.TargetsOf("any"))
			want, links := runtime.MultiLink, 1
			if perFunction {
				want, links = runtime.PerFunction, len(fns)
			}
			assert.Equal(t, want, objs.Mechanism("any"))
			assert.Len(t, objs.Links, links)
			const opens = 50
			for range opens {
				f, err := os.Open("/dev/null")
				require.NoError(t, err)
				f.Close()
			}
			calls, err := runtime.OpenMap[uint32, uint64](objs, "any_calls")
			require.NoError(t, err)
			got, _, err := calls.Lookup(uint32(open))
			require.NoError(t, err)
			assert.Equal(t, uint64(opens), got, "%s: security_file_open's calls", want)
			start = time.Now()
			require.NoError(t, objs.Close())
			results = append(results, want.String()+": load and attach "+total.Round(time.Millisecond).String()+", attach "+objs.Attached.Round(time.Millisecond).String()+", detach and close "+time.Since(start).Round(time.Millisecond).String())
		}
		vmtest.Summary(t, "100 functions (security_*) on %s: %s (TCG: relative only)", runtime.KernelRelease(), strings.Join(results, "; "))
	})
}
