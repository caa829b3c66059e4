package vmboot_test

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/internal/vmboot"
	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// TestModuleFiles packs modules of every test kernel for the guest's init
// to load: decompressed ELF files under lib/modules/RELEASE, listed
// dependencies first (vxlan needs udp_tunnel and ip6_udp_tunnel).
func TestModuleFiles(t *testing.T) {
	kernels := vmtest.Kernels(t)
	files, notes, err := vmboot.ModuleFiles(kernels, []string{"loop", "vxlan"})
	require.NoError(t, err)
	assert.Empty(t, notes)
	for _, k := range kernels {
		_, release, err := k.Modules()
		require.NoError(t, err)
		list, ok := files[path.Join("lib/modules", release, "vmtest.load")]
		require.True(t, ok, "kernel %s: no list for %s", k.Name, release)
		order := strings.Fields(string(list.Data))
		assert.Equal(t, []string{"loop.ko", "udp_tunnel.ko", "ip6_udp_tunnel.ko", "vxlan.ko"}, order, k.Name)
		for _, name := range order {
			f, ok := files[path.Join("lib/modules", release, name)]
			require.True(t, ok, "%s: %s listed, not packed", k.Name, name)
			ko, err := elf.NewFile(bytes.NewReader(f.Data))
			require.NoError(t, err, "%s: %s is decompressed ELF", k.Name, name)
			assert.Equal(t, elf.ET_REL, ko.Type)
			assert.NotNil(t, ko.Section(".BTF"), "%s: %s has BTF", k.Name, name)
		}
	}

	// ext4 is built into 6.1 and 6.12 (whose packages list what is).
	_, notes, err = vmboot.ModuleFiles(kernels[:2], []string{"ext4"})
	require.NoError(t, err)
	assert.Len(t, notes, 2)
	assert.Contains(t, notes[0], "ext4 is built in")

	_, _, err = vmboot.ModuleFiles(kernels, []string{"no_such_module"})
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, "no module no_such_module")
}
