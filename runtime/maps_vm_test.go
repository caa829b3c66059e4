package runtime_test

import (
	"bytes"
	"math/bits"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// stat is a struct value kept in maps.
type stat struct {
	Count uint64
	Sum   uint64
	Max   int64
	Comm  [16]byte
}

// statView is what the generator would make of stat.
type statView struct{ runtime.ViewOf[stat] }

func (v statView) addCount(x runtime.U64) {
	runtime.AtomicAdd(v.ViewOf.View, unsafe.Offsetof(stat{}.Count), x)
}
func (v statView) addSum(x runtime.U64) {
	runtime.AtomicAdd(v.ViewOf.View, unsafe.Offsetof(stat{}.Sum), x)
}
func (v statView) max() runtime.S64 {
	return runtime.Get[int64](v.ViewOf.View, unsafe.Offsetof(stat{}.Max))
}
func (v statView) setMax(x runtime.S64) {
	runtime.Set(v.ViewOf.View, unsafe.Offsetof(stat{}.Max), x)
}
func (v statView) setComm() {
	runtime.SetComm(v.ViewOf.View, unsafe.Offsetof(stat{}.Comm), unsafe.Sizeof(stat{}.Comm))
}

// stashed is what the fexit program reports from the entry-to-exit stash.
type stashed struct {
	Offset int64
	Ret    int64
}

var (
	counts   runtime.Hash[runtime.U32, runtime.U64] // whence -> calls
	sums     runtime.Array[runtime.U64]             // whence -> sum of offsets
	glob     runtime.Global[statView]               // every call
	byWhence runtime.Hash[runtime.U32, statView]    // whence -> stat, LookupOrInit
	stash    runtime.Hash[runtime.U32, runtime.S64] // tid -> offset, fentry to fexit
	perCPU   runtime.PerCPUArray[runtime.U64]       // calls, per CPU
	lru      runtime.LRUHash[runtime.U64, runtime.U32]
	deleted  runtime.Hash[runtime.U32, runtime.U64]
	unused   runtime.Hash[runtime.U64, runtime.U64] // declared, used by no program
	log2Hist runtime.Log2Hist
	linHist  runtime.LinearHist
	byKey    runtime.Log2HistBy[runtime.U32]
	stashOut = runtime.NewRing("stashed", 1<<14)
)

func init() {
	counts.Declare("counts", runtime.MapOptions{MaxEntries: 16})
	sums.Declare("sums", runtime.MapOptions{MaxEntries: 5})
	glob.Declare("glob", runtime.MapOptions{})
	byWhence.Declare("byWhence", runtime.MapOptions{MaxEntries: 16})
	stash.Declare("stash", runtime.MapOptions{MaxEntries: 1024})
	perCPU.Declare("perCPU", runtime.MapOptions{MaxEntries: 1})
	lru.Declare("lru", runtime.MapOptions{MaxEntries: 64})
	deleted.Declare("deleted", runtime.MapOptions{MaxEntries: 16})
	unused.Declare("unused", runtime.MapOptions{MaxEntries: 16})
	log2Hist.Declare("log2Hist", runtime.HistOptions{})
	linHist.Declare("linHist", runtime.HistOptions{Step: 10, Slots: 10})
	byKey.Declare("byKey", runtime.HistOptions{MaxEntries: 16})
}

// buildMapsEntry counts, sums, stashes and buckets every lseek of this
// process on a tmpfs file.
func buildMapsEntry(t *testing.T) *runtime.Program {
	p := runtime.New(runtime.Info{Name: "maps_in", Kind: runtime.Fentry, Target: "shmem_file_llseek"})
	p.FilterTgid(uint32(os.Getpid()))
	x := runtime.Arg[int64](p, "offset", 1)
	w := runtime.Arg[int32](p, "whence", 2).U32()
	counts.Add(p, w, runtime.Uint64(1))
	sums.Add(p, w, x.U64())
	g := glob.Get(p)
	g.addCount(runtime.Uint64(1))
	g.addSum(x.U64())
	p.If(x.GtV(g.max()), func() { g.setMax(x) })
	g.setComm()
	byWhence.LookupOrInit(p, w, func(s statView) {
		s.addCount(runtime.Uint64(1))
		s.addSum(x.U64())
	})
	stash.Update(p, runtime.TidValue(), x)
	perCPU.Add(p, runtime.Uint32(0), runtime.Uint64(1))
	lru.Update(p, x.U64(), w)
	deleted.Update(p, w, runtime.Uint64(7))
	p.If(w.Eq(1), func() { deleted.Delete(p, w) })
	p.If(x.Ge(0), func() {
		log2Hist.Record(p, x)
		linHist.Record(p, x)
		byKey.RecordN(p, w, x, w.Add(1)) // weighted: whence+1 per call
	})
	require.NoError(t, p.Err())
	return p
}

// buildMapsExit takes the stashed offset back at exit and reports it with
// the return value.
func buildMapsExit(t *testing.T) *runtime.Program {
	p := runtime.New(runtime.Info{Name: "maps_out", Kind: runtime.Fexit, Target: "shmem_file_llseek"})
	p.FilterTgid(uint32(os.Getpid()))
	stash.Take(p, runtime.TidValue(), func(off runtime.S64) {
		var s stashed
		ev := runtime.NewView[stashed](p).View
		runtime.Set(ev, unsafe.Offsetof(s.Offset), off)
		runtime.Set(ev, unsafe.Offsetof(s.Ret), runtime.Ret[int64](p, 3))
		stashOut.Output(ev)
	})
	require.NoError(t, p.Err())
	return p
}

// TestVMMaps proves every map kind and operation in real kernels: the
// counts, sums, struct values, per-CPU values, stash, deletes and
// histograms read back in Go equal what the calls this process made imply.
func TestVMMaps(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		objs, err := runtime.LoadPackage(runtime.Options{}, []*runtime.Program{buildMapsEntry(t), buildMapsExit(t)},
			&counts, &sums, &glob, &byWhence, &stash, &perCPU, &lru, &deleted, &unused, &log2Hist, &linHist, &byKey, stashOut)
		require.NoError(t, err)
		defer objs.Close()
		require.Contains(t, objs.Maps, "unused", "declared maps exist even when no program uses them")

		f, err := os.CreateTemp("", "maps")
		require.NoError(t, err)
		defer os.Remove(f.Name())
		defer f.Close()
		type call struct {
			x int64
			w uint32
		}
		calls := []call{{0, 0}, {1, 0}, {2, 1}, {3, 1}, {5, 2}, {8, 0}, {100, 3}, {1000, 0}, {1024, 1}, {4096, 2}, {65536, 0}, {1 << 20, 3}, {1 << 33, 0}, {-5, 1}, {15, 4}, {25, 4}}
		for _, c := range calls {
			unix.Syscall(unix.SYS_LSEEK, f.Fd(), uintptr(c.x), uintptr(c.w))
		}

		wantCounts, wantSums := map[uint32]uint64{}, map[uint32]uint64{}
		var sum uint64
		var maxX int64
		log2, lin, keyed := make([]uint64, runtime.DefaultLog2Slots), make([]uint64, 10), map[uint32][]uint64{}
		for _, c := range calls {
			wantCounts[c.w]++
			wantSums[c.w] += uint64(c.x)
			sum += uint64(c.x)
			maxX = max(maxX, c.x)
			if c.x < 0 {
				continue
			}
			slot := 0
			if c.x > 0 {
				slot = min(bits.Len64(uint64(c.x))-1, runtime.DefaultLog2Slots-1)
			}
			log2[slot]++
			lin[min(c.x/10, 9)]++
			if keyed[c.w] == nil {
				keyed[c.w] = make([]uint64, runtime.DefaultLog2Slots)
			}
			keyed[c.w][slot] += uint64(c.w) + 1
		}

		cm, err := runtime.OpenMap[uint32, uint64](objs, "counts")
		require.NoError(t, err)
		got, err := cm.Entries()
		require.NoError(t, err)
		assert.Equal(t, wantCounts, got, "Hash.Add")

		sm, err := runtime.OpenMap[uint32, uint64](objs, "sums")
		require.NoError(t, err)
		for w, s := range wantSums {
			v, ok, err := sm.Lookup(w)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, s, v, "Array.Add at %d", w)
		}

		gm, err := runtime.OpenMap[uint32, stat](objs, "glob")
		require.NoError(t, err)
		g, ok, err := gm.Lookup(0)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, uint64(len(calls)), g.Count, "Global view AddCount")
		assert.Equal(t, sum, g.Sum)
		assert.Equal(t, maxX, g.Max, "a comparison of two values and a store")
		assert.Equal(t, vmtest.Comm(), string(bytes.TrimRight(g.Comm[:], "\x00")))

		bw, err := runtime.OpenMap[uint32, stat](objs, "byWhence")
		require.NoError(t, err)
		all, err := bw.Entries()
		require.NoError(t, err)
		require.Len(t, all, len(wantCounts))
		for w, s := range all {
			assert.Equal(t, wantCounts[w], s.Count, "LookupOrInit count for whence %d", w)
			assert.Equal(t, wantSums[w], s.Sum, "LookupOrInit sum for whence %d", w)
		}

		pc, err := runtime.OpenMap[uint32, uint64](objs, "perCPU")
		require.NoError(t, err)
		n, _, err := pc.Lookup(0)
		require.NoError(t, err)
		assert.Equal(t, uint64(len(calls)), n, "per-CPU values summed")
		per, _, err := pc.LookupPerCPU(0)
		require.NoError(t, err)
		assert.Len(t, per, mustCPUs(t))

		lm, err := runtime.OpenMap[uint64, uint32](objs, "lru")
		require.NoError(t, err)
		for _, c := range calls {
			v, ok, err := lm.Lookup(uint64(c.x))
			require.NoError(t, err)
			if assert.True(t, ok, "lru key %d", c.x) {
				assert.Equal(t, c.w, v)
			}
		}

		dm, err := runtime.OpenMap[uint32, uint64](objs, "deleted")
		require.NoError(t, err)
		_, ok, err = dm.Lookup(1)
		require.NoError(t, err)
		assert.False(t, ok, "Delete removed whence 1")
		v, ok, err := dm.Lookup(0)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, uint64(7), v)

		stm, err := runtime.OpenMap[uint32, int64](objs, "stash")
		require.NoError(t, err)
		left, err := stm.Entries()
		require.NoError(t, err)
		assert.Empty(t, left, "Take deleted every stashed entry")
		rd, err := runtime.OpenReader[stashed](objs, "stashed")
		require.NoError(t, err)
		taken := collect(t, rd, len(calls), 2*time.Second)
		require.Len(t, taken, len(calls))
		for i, s := range taken {
			assert.Equal(t, calls[i].x, s.Offset, "the offset stashed at entry comes back at exit")
		}

		h, err := runtime.OpenHist(objs, &log2Hist)
		require.NoError(t, err)
		lh, err := h.Histogram()
		require.NoError(t, err)
		assert.Equal(t, log2, lh.Slots, "log2 buckets")
		h, err = runtime.OpenHist(objs, &linHist)
		require.NoError(t, err)
		ll, err := h.Histogram()
		require.NoError(t, err)
		assert.Equal(t, lin, ll.Slots, "linear buckets")
		kh, err := runtime.OpenHistBy[uint32](objs, &byKey)
		require.NoError(t, err)
		hs, err := kh.Histograms()
		require.NoError(t, err)
		require.Len(t, hs, len(keyed))
		for w, slots := range keyed {
			assert.Equal(t, slots, hs[w].Slots, "whence %d's histogram", w)
		}
		var out bytes.Buffer
		lh.Print(&out, "offset")
		t.Logf("log2 histogram of the offsets on %s:\n%s", runtime.KernelRelease(), out.String())
		require.NoError(t, h.Clear())
		ll, err = h.Histogram()
		require.NoError(t, err)
		assert.Zero(t, ll.Total(), "Clear")
	})
}

func mustCPUs(t *testing.T) int {
	n, err := ebpf.PossibleCPU()
	require.NoError(t, err)
	return n
}
