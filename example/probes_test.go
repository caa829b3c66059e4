// Package example_test loads every probe of every example package in the
// test kernels: the table the generator's output must pass.
package example_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/example/argwatch"
	"github.com/fentrygen/fentrygen/example/connwatch"
	"github.com/fentrygen/fentrygen/example/execsnoop"
	"github.com/fentrygen/fentrygen/example/readlat"
	"github.com/fentrygen/fentrygen/example/vfsstat"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

func TestVMEveryExampleProbeLoads(t *testing.T) {
	packages := map[string][]*runtime.Program{
		"connwatch": connwatch.Programs(),
		"argwatch":  argwatch.Programs(),
		"execsnoop": execsnoop.Programs(),
		"readlat":   readlat.Programs(),
		"vfsstat":   vfsstat.Programs(),
	}
	vmtest.Run(t, func(t *testing.T) {
		release := runtime.KernelRelease()
		for pkg, progs := range packages {
			for _, p := range progs {
				t.Run(pkg+"."+p.Info().Name, func(t *testing.T) {
					objs, err := runtime.Load(runtime.Options{}, p)
					if p.Info().Target == "do_mmap" && release[:4] == "6.1." {
						assert.ErrorContains(t, err, "takes at most 6", "x86-64 before 6.6")
						return
					}
					require.NoError(t, err)
					assert.Len(t, objs.Links, 1)
					assert.NoError(t, objs.Close())
				})
			}
		}
	})
}
