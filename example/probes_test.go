// Package example_test loads every probe of every example package in the
// test kernels: the table the generator's output must pass.
package example_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/argwatch"
	"github.com/fentrygen/fentrygen/example/cachestat"
	"github.com/fentrygen/fentrygen/example/connwatch"
	"github.com/fentrygen/fentrygen/example/execsnoop"
	"github.com/fentrygen/fentrygen/example/fsdist"
	"github.com/fentrygen/fentrygen/example/fsslower"
	"github.com/fentrygen/fentrygen/example/funclatency"
	"github.com/fentrygen/fentrygen/example/klockstat"
	"github.com/fentrygen/fentrygen/example/loopwatch"
	"github.com/fentrygen/fentrygen/example/readahead"
	"github.com/fentrygen/fentrygen/example/readlat"
	"github.com/fentrygen/fentrygen/example/sessionlat"
	"github.com/fentrygen/fentrygen/example/solisten"
	"github.com/fentrygen/fentrygen/example/tcpconnlat"
	"github.com/fentrygen/fentrygen/example/tcprtt"
	"github.com/fentrygen/fentrygen/example/tcpsynbl"
	"github.com/fentrygen/fentrygen/example/vfscount"
	"github.com/fentrygen/fentrygen/example/vfsstat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

var manyArgs = map[string]bool{"do_mmap": true, "tcp_v4_syn_recv_sock": true, "tcp_v6_syn_recv_sock": true}

func TestVMEveryExampleProbeLoads(t *testing.T) {
	packages := map[string][]*runtime.Program{
		"connwatch":   connwatch.Programs(),
		"argwatch":    argwatch.Programs(),
		"cachestat":   cachestat.Programs(),
		"execsnoop":   execsnoop.Programs(),
		"fsdist":      fsdist.Programs(),
		"fsslower":    fsslower.Programs(),
		"funclatency": funclatency.Programs(),
		"klockstat":   klockstat.Programs(),
		"loopwatch":   loopwatch.Programs(), // on the loop module's functions
		"readahead":   readahead.Programs(),
		"readlat":     readlat.Programs(),
		"sessionlat":  sessionlat.Programs(),
		"solisten":    solisten.Programs(),
		"tcpconnlat":  tcpconnlat.Programs(),
		"tcprtt":      tcprtt.Programs(),
		"tcpsynbl":    tcpsynbl.Programs(),
		"vfscount":    vfscount.Programs(),
		"vfsstat":     vfsstat.Programs(),
	}
	vmtest.Run(t, func(t *testing.T) {
		release := runtime.KernelRelease()
		for pkg, progs := range packages {
			for _, p := range progs {
				t.Run(pkg+"."+p.Info().Name, func(t *testing.T) {
					objs, err := runtime.Load(runtime.Options{}, p)
					// do_mmap and the syn_recv_sock functions take more
					// than the six argument slots x86-64 trampolines
					// took before Linux 6.6.
					if manyArgs[p.Info().Target] && release[:4] == "6.1." {
						assert.ErrorContains(t, err, "takes at most 6", "x86-64 before 6.6")
						return
					}
					require.NoError(t, err)
					// An fsession probe is one link natively, two as a pair.
					// A probe on several functions is one multi-link, or one
					// link per function.
					links := map[runtime.Mechanism]int{runtime.Trampoline: 1, runtime.SessionNative: 1, runtime.SessionPair: 2, runtime.MultiLink: 1,
						runtime.PerFunction: len(objs.TargetsOf(p.Info().Name))}
					assert.Len(t, objs.Links, links[objs.Mechanism(p.Info().Name)], "%s", objs.Mechanism(p.Info().Name))
					assert.NoError(t, objs.Close())
				})
			}
		}
	})
}
