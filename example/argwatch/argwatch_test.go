package argwatch_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fentrygen/fentrygen/example/argwatch"
	"github.com/fentrygen/fentrygen/internal/vmtest"
	"github.com/fentrygen/fentrygen/runtime"
)

// TestVMManyArgs maps a file at a known offset and reads do_mmap's len,
// prot, flags and pgoff (slot 6 on 6.12, where vm_flags comes first) from
// the generated probe. On 6.1 the x86-64 trampoline takes six slots at
// most, and loading must say so.
func TestVMManyArgs(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		argwatch.OnlyPid = uint32(os.Getpid())
		defer func() { argwatch.OnlyPid = 0 }()
		objs, err := argwatch.Load(runtime.Options{Only: []string{"onMmap"}})
		if strings.HasPrefix(runtime.KernelRelease(), "6.1.") {
			require.Error(t, err)
			assert.Contains(t, err.Error(), "this kernel's BPF trampoline takes at most 6")
			t.Logf("on %s, as the user sees it: %v", runtime.KernelRelease(), err)
			return
		}
		require.NoError(t, err)
		defer objs.Close()
		rd := objs.MmapReader

		vmtest.MmapFile(t, 3, 5, unix.PROT_READ|unix.PROT_WRITE)
		page := os.Getpagesize()

		var found *argwatch.Mmap
		for {
			e, err := rd.ReadTimeout(time.Second)
			if err != nil {
				break
			}
			if e.Pgoff == 5 && e.Len == uint64(3*page) {
				found = &e
			}
		}
		require.NotNil(t, found, "an event for the mmap of 3 pages at page 5")
		assert.Equal(t, uint64(unix.PROT_READ|unix.PROT_WRITE), found.Prot)
		assert.Equal(t, uint64(unix.MAP_SHARED), found.Flags&unix.MAP_SHARED)
		t.Logf("do_mmap on %s: %+v", runtime.KernelRelease(), *found)
	})
}

// TestVMStructByValue reads kuid_t, a struct passed by value, and the
// return value of from_kuid_munged while the real uid is 4321.
func TestVMStructByValue(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		argwatch.OnlyPid = uint32(os.Getpid())
		defer func() { argwatch.OnlyPid = 0 }()
		objs, err := argwatch.Load(runtime.Options{Only: []string{"onUid"}})
		require.NoError(t, err)
		defer objs.Close()
		rd := objs.UidReader

		const uid = 4321
		vmtest.GetuidAs(t, uid)

		var seen bool
		for {
			e, err := rd.ReadTimeout(time.Second)
			if err != nil {
				break
			}
			if e.Kuid == uid {
				seen = true
				assert.Equal(t, uint32(uid), e.Ret)
			}
		}
		assert.True(t, seen, "an event with kuid.val == %d", uid)
	})
}
