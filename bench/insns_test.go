package bench

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fbtf "github.com/fentrygen/fentrygen/btf"
	"github.com/fentrygen/fentrygen/example/argwatch"
	"github.com/fentrygen/fentrygen/example/cachestat"
	"github.com/fentrygen/fentrygen/example/connwatch"
	"github.com/fentrygen/fentrygen/example/execsnoop"
	"github.com/fentrygen/fentrygen/example/fsdist"
	"github.com/fentrygen/fentrygen/example/fsslower"
	"github.com/fentrygen/fentrygen/example/funclatency"
	"github.com/fentrygen/fentrygen/example/klockstat"
	"github.com/fentrygen/fentrygen/example/readahead"
	"github.com/fentrygen/fentrygen/example/readlat"
	"github.com/fentrygen/fentrygen/example/sessionlat"
	"github.com/fentrygen/fentrygen/example/solisten"
	"github.com/fentrygen/fentrygen/example/tcpconnlat"
	"github.com/fentrygen/fentrygen/example/tcprtt"
	"github.com/fentrygen/fentrygen/example/tcpsynbl"
	"github.com/fentrygen/fentrygen/example/vfsstat"
	"github.com/fentrygen/fentrygen/internal/vmboot"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// slots counts instructions as the kernel does: a 64-bit immediate load
// takes two.
func slots(insns asm.Instructions) int {
	n := 0
	for _, ins := range insns {
		n += int(ins.Size()) / asm.InstructionSize
	}
	return n
}

// pair is one of our programs and the C program it is compared with.
type pair struct {
	example, ours string
	progs         func() []*runtime.Program
	// twin is the C twin in twins/ (compiled here with clang -O2), or
	// original the libbpf-tools program whose BPF object Debian ships;
	// c names its program, or programs joined by "+" that add up.
	twin, original, c string
	// session is how an fsession probe is counted: "fsession" (one
	// program, built for the 7.x test kernel, which has fsession), or
	// "fentry" and "fexit" (the halves of the pair that stands in for it
	// elsewhere).
	session string
}

func pairs() []pair {
	var out []pair
	add := func(example string, progs func() []*runtime.Program, twin, original string, names map[string]string) {
		for ours, c := range names {
			out = append(out, pair{example: example, ours: ours, progs: progs, twin: twin, original: original, c: c})
		}
	}
	// Configured as a user would: the filters in.
	connwatch.OnlyPid, connwatch.DeniedPort = 4242, 8080
	argwatch.OnlyPid, execsnoop.OnlyParent = 4242, 4242
	add("connwatch", connwatch.Programs, "connwatch", "", map[string]string{"onConnect": "on_connect", "onConnectExit": "on_connect_exit", "denyConnect": "deny_connect"})
	add("argwatch", argwatch.Programs, "argwatch", "", map[string]string{"onMmap": "on_mmap", "onUid": "on_uid"})
	add("execsnoop", execsnoop.Programs, "execsnoop", "", map[string]string{"onExec": "on_exec"})
	add("readlat", readlat.Programs, "readlat", "", map[string]string{"onEntry": "on_entry", "onExit": "on_exit"})
	// Ports, as run without flags, against libbpf-tools' own programs
	// (which keep their flags' checks: const volatile, decided at load).
	add("vfsstat", vfsstat.Programs, "", "vfsstat", map[string]string{"onRead": "fentry_vfs_read", "onWrite": "fentry_vfs_write", "onFsync": "fentry_vfs_fsync", "onOpen": "fentry_vfs_open", "onCreate": "fentry_vfs_create"})
	add("funclatency", funclatency.Programs, "", "funclatency", map[string]string{"onEntry": "dummy_kprobe", "onExit": "dummy_kretprobe"})
	for session, c := range map[string]string{"fsession": "dummy_kprobe+dummy_kretprobe", "fentry": "dummy_kprobe", "fexit": "dummy_kretprobe"} {
		out = append(out, pair{example: "sessionlat", ours: "onCall", progs: sessionlat.Programs, original: "funclatency", c: c, session: session})
	}
	fs := map[string]string{"onRead": "file_read_fentry", "onReadExit": "file_read_fexit", "onWrite": "file_write_fentry", "onWriteExit": "file_write_fexit",
		"onOpen": "file_open_fentry", "onOpenExit": "file_open_fexit", "onFsync": "file_sync_fentry", "onFsyncExit": "file_sync_fexit"}
	add("fsslower", fsslower.Programs, "", "fsslower", fs)
	fs["onGetattr"], fs["onGetattrExit"] = "getattr_fentry", "getattr_fexit"
	add("fsdist", fsdist.Programs, "", "fsdist", fs)
	add("tcpconnlat", tcpconnlat.Programs, "", "tcpconnlat", map[string]string{"onV4Connect": "fentry_tcp_v4_connect", "onV6Connect": "fentry_tcp_v6_connect", "onRcvStateProcess": "fentry_tcp_rcv_state_process"})
	add("tcprtt", tcprtt.Programs, "", "tcprtt", map[string]string{"onRcv": "tcp_rcv"})
	add("tcpsynbl", tcpsynbl.Programs, "", "tcpsynbl", map[string]string{"onV4": "tcp_v4_syn_recv", "onV6": "tcp_v6_syn_recv"})
	add("solisten", solisten.Programs, "", "solisten", map[string]string{"onListen": "inet_listen_fexit"})
	// The page-cache ports hook the folio-era functions where the originals
	// hook functions these kernels no longer have; each program is paired
	// with the original's program of the same role.
	add("cachestat", cachestat.Programs, "", "cachestat", map[string]string{"onAccess": "mark_page_accessed", "onAdd": "add_to_page_cache_lru", "onBufferDirty": "mark_buffer_dirty", "onDirty": "account_page_dirtied"})
	add("readahead", readahead.Programs, "", "readahead", map[string]string{"onRa": "do_page_cache_ra", "onRaExit": "do_page_cache_ra_ret", "onRaOrder": "do_page_cache_ra", "onRaOrderExit": "do_page_cache_ra_ret", "onAccess": "mark_page_accessed"})
	// The original allocates where the port adds (and checks the result):
	// its twin has the port's logic.
	add("readahead", readahead.Programs, "readahead", "", map[string]string{"onAddEntry": "on_add_entry", "onAdd": "on_add"})
	add("klockstat", klockstat.Programs, "", "klockstat", map[string]string{
		"onMutexLock": "mutex_lock", "onMutexLockExit": "mutex_lock_exit", "onMutexIntr": "mutex_lock_interruptible", "onMutexIntrExit": "mutex_lock_interruptible_exit",
		"onMutexKill": "mutex_lock_killable", "onMutexKillExit": "mutex_lock_killable_exit", "onMutexTryExit": "mutex_trylock_exit", "onMutexUnlock": "mutex_unlock",
		"onDownRead": "down_read", "onDownReadExit": "down_read_exit", "onReadIntr": "down_read_interruptible", "onReadIntrExit": "down_read_interruptible_exit",
		"onReadKill": "down_read_killable", "onReadKillExit": "down_read_killable_exit", "onReadTryExit": "down_read_trylock_exit", "onUpRead": "up_read",
		"onDownWrite": "down_write", "onDownWriteExit": "down_write_exit", "onWriteKill": "down_write_killable", "onWriteKillExit": "down_write_killable_exit",
		"onWriteTryExit": "down_write_trylock_exit", "onUpWrite": "up_write",
	})
	sort.Slice(out, func(i, j int) bool {
		return out[i].example+out[i].ours+out[i].session < out[j].example+out[j].ours+out[j].session
	})
	return out
}

// twins compiles bench/twins/*.bpf.c with clang -O2 against a vmlinux.h of
// the running kernel (bpftool), as a C user would, and returns their
// programs by twin and name. It skips the test, loudly, without the tools.
func twins(t *testing.T) map[string]map[string]*ebpf.ProgramSpec {
	t.Helper()
	for _, tool := range []string{"clang", "bpftool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("!!! NOT RUN: %s not found (apt-get install clang llvm libbpf-dev bpftool; .ci/run does)", tool)
		}
	}
	if _, err := os.Stat(fbtf.KernelPath); err != nil {
		t.Skipf("!!! NOT RUN: no %s to make vmlinux.h from", fbtf.KernelPath)
	}
	dir := t.TempDir()
	vmlinux, err := exec.Command("bpftool", "btf", "dump", "file", fbtf.KernelPath, "format", "c").Output()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinux.h"), vmlinux, 0o644))
	sources, err := filepath.Glob(filepath.Join("twins", "*.bpf.c"))
	require.NoError(t, err)
	out := map[string]map[string]*ebpf.ProgramSpec{}
	for _, src := range sources {
		name := strings.TrimSuffix(filepath.Base(src), ".bpf.c")
		obj := filepath.Join(dir, name+".o")
		cmd := exec.Command("clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", dir, "-c", src, "-o", obj)
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", msg)
		spec, err := ebpf.LoadCollectionSpec(obj)
		require.NoError(t, err)
		out[name] = spec.Programs
	}
	return out
}

// originalPrograms reads the BPF object that a libbpf-tools binary embeds
// (its skeleton): the ELF whose machine is BPF.
func originalPrograms(t *testing.T, tool string) map[string]*ebpf.ProgramSpec {
	t.Helper()
	path, err := vmtest.ToolBinary(tool)
	if err != nil {
		t.Skipf("!!! NOT RUN: Debian's libbpf-tools cannot be had here: %v", err)
	}
	bin, err := os.ReadFile(path)
	require.NoError(t, err)
	for off := 0; ; {
		i := bytes.Index(bin[off:], []byte(elf.ELFMAG))
		require.GreaterOrEqual(t, i, 0, "%s embeds no BPF object", path)
		start := off + i
		off = start + len(elf.ELFMAG)
		if start+64 > len(bin) || elf.Machine(binary.LittleEndian.Uint16(bin[start+18:])) != elf.EM_BPF {
			continue
		}
		shoff := binary.LittleEndian.Uint64(bin[start+40:])
		end := start + int(shoff) + int(binary.LittleEndian.Uint16(bin[start+58:]))*int(binary.LittleEndian.Uint16(bin[start+60:]))
		spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(bin[start:end]))
		require.NoError(t, err)
		return spec.Programs
	}
}

// TestInstructions compares the instructions each example program emits
// (relocated for the running kernel) with clang -O2's for the same logic in
// C: the twins in twins/, and for ports, libbpf-tools' own programs as
// Debian built them. No program may be longer than its twin.
func TestInstructions(t *testing.T) {
	compiled := twins(t)
	target, err := runtime.KernelTarget()
	require.NoError(t, err)
	built := map[string][]*runtime.Program{}
	originals := map[string]map[string]*ebpf.ProgramSpec{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "program\tfentrygen\tclang\tratio\tC is\t")
	for _, pr := range pairs() {
		if built[pr.example] == nil {
			built[pr.example] = pr.progs()
		}
		var ours *runtime.Program
		for _, p := range built[pr.example] {
			if p.Info().Name == pr.ours {
				ours = p
			}
		}
		require.NotNil(t, ours, "%s.%s", pr.example, pr.ours)
		name := pr.example + "." + pr.ours
		progTarget := target
		switch pr.session {
		case "fsession":
			name += " (fsession)"
			if progTarget, err = sessionTarget(); err != nil {
				fmt.Fprintf(tw, "%s\tNOT MEASURED: %v\t\t\t\t\n", name, err)
				continue
			}
		case "fentry", "fexit":
			name += " (pair: " + pr.session + ")"
			entry, exit, err := ours.Halves()
			require.NoError(t, err)
			ours = map[string]*runtime.Program{"fentry": entry, "fexit": exit}[pr.session]
		}
		spec, err := ours.Spec(progTarget)
		require.NoError(t, err)
		var cs []*ebpf.ProgramSpec
		what := "twin"
		for _, cname := range strings.Split(pr.c, "+") {
			if pr.twin != "" {
				cs = append(cs, compiled[pr.twin][cname])
				continue
			}
			if originals[pr.original] == nil {
				originals[pr.original] = originalPrograms(t, pr.original)
			}
			cs, what = append(cs, originals[pr.original][cname]), "libbpf-tools"
		}
		m := 0
		for i, c := range cs {
			require.NotNil(t, c, "C program %s", strings.Split(pr.c, "+")[i])
			m += slots(c.Instructions)
		}
		n := slots(spec.Instructions)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2fx\t%s\t\n", name, n, m, float64(n)/float64(m), what)
		assert.LessOrEqual(t, n, m, "%s emits %d instructions, clang %d for %s", name, n, m, pr.c)
	}
	tw.Flush()
}

// sessionTarget is the 7.x test kernel, whose BTF has fsession and its
// kfuncs: where a native fsession program is built.
func sessionTarget() (runtime.Target, error) {
	kernels, err := vmboot.Kernels()
	if err != nil {
		return runtime.Target{}, err
	}
	for _, k := range kernels {
		if k.Name != "7.x" {
			continue
		}
		spec, err := k.BTF()
		if err != nil {
			return runtime.Target{}, err
		}
		return runtime.Target{Spec: spec, Name: k.Package}, nil
	}
	return runtime.Target{}, fmt.Errorf("no 7.x test kernel")
}
