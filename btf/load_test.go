package btf_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	fbtf "github.com/fentrygen/fentrygen/btf"
)

var snapshotFile = filepath.Join("..", "testdata", "btf", "vmlinux-min.btf")

// TestLoadFileRefusesNonRegular: -btf /dev/zero used to grow to gigabytes,
// a FIFO to block forever.
func TestLoadFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(dir, link))
	cases := map[string]string{
		dir:  "is a directory, not a regular file",
		fifo: "is a named pipe, not a regular file",
		link: "is a directory, not a regular file",
	}
	for _, dev := range []string{"/dev/zero", "/dev/null"} {
		if _, err := os.Stat(dev); err == nil {
			cases[dev] = "is a device, not a regular file"
		}
	}
	for path, want := range cases {
		_, err := fbtf.LoadFile(path)
		assert.EqualError(t, err, path+": "+want)
	}

	missing := filepath.Join(dir, "missing.btf")
	_, err := fbtf.LoadFile(missing)
	assert.EqualError(t, err, missing+": no such file or directory")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestLoadFileBounded(t *testing.T) {
	// A sparse file: its size is all that is read.
	big := filepath.Join(t.TempDir(), "big.btf")
	require.NoError(t, os.WriteFile(big, nil, 0o644))
	require.NoError(t, os.Truncate(big, fbtf.MaxFileSize+1))
	_, err := fbtf.LoadFile(big)
	assert.EqualError(t, err, big+": file too large: 67108865 bytes, more than the 64 MiB BTF may take")

	_, err = fbtf.LoadBytes("big", make([]byte, fbtf.MaxFileSize+1))
	assert.EqualError(t, err, "big: input too large: 67108865 bytes, more than the 64 MiB BTF may take")
}

func TestLoadFileInvalid(t *testing.T) {
	blob, err := os.ReadFile(snapshotFile)
	require.NoError(t, err)
	dir := t.TempDir()
	for name, c := range map[string]struct {
		data []byte
		err  string
	}{
		"empty.btf":     {nil, "invalid BTF: parsing .BTF header: read header: buffer too small"},
		"text.btf":      {[]byte("This is not BTF, it is a text file.\n"), "invalid BTF: parsing .BTF header: no valid BTF header"},
		"truncated.btf": {blob[:len(blob)/2], "invalid BTF: string table is out of bounds"},
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, c.data, 0o644))
		_, err := fbtf.LoadFile(path)
		assert.EqualError(t, err, path+": "+c.err)
		_, err = fbtf.LoadBytes(name, c.data)
		assert.EqualError(t, err, name+": "+c.err)
	}
}

func TestLoadFileELF(t *testing.T) {
	blob, err := os.ReadFile(snapshotFile)
	require.NoError(t, err)
	dir := t.TempDir()

	good := filepath.Join(dir, "good.o")
	require.NoError(t, os.WriteFile(good, elfFile(".BTF", blob, 0), 0o644))
	spec, err := fbtf.LoadFile(good)
	require.NoError(t, err)
	_, err = fbtf.ResolveFunc(spec, "tcp_v4_connect")
	assert.NoError(t, err)

	beyond := elfFile(".BTF", blob, uint64(len(blob)+1000))
	for name, c := range map[string]struct {
		data []byte
		err  string
	}{
		"nobtf.o":     {elfFile(".text", blob, 0), "ELF file without a .BTF section"},
		"huge.o":      {elfFile(".BTF", blob, fbtf.MaxFileSize+1), ".BTF section too large: 67108865 bytes, more than the 64 MiB BTF may take"},
		"beyond.o":    {beyond, fmt.Sprintf(".BTF section truncated: %d of %d bytes in the file", len(beyond)-64, len(blob)+1000)},
		"truncated.o": {elfFile(".BTF", blob, 0)[:40], "not a valid ELF file: EOF"},
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, c.data, 0o644))
		_, err := fbtf.LoadFile(path)
		assert.EqualError(t, err, path+": "+c.err)
	}
}

// elfFile is a minimal little-endian ELF object holding data in a section
// called name, whose header claims size bytes (0: len(data)).
func elfFile(name string, data []byte, size uint64) []byte {
	if size == 0 {
		size = uint64(len(data))
	}
	shstrtab := []byte("\x00" + name + "\x00.shstrtab\x00")
	dataOff := uint64(64)
	strOff := dataOff + uint64(len(data))
	shOff := (strOff + uint64(len(shstrtab)) + 7) &^ 7
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_BPF), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: 64, Shentsize: 64, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(data)
	b.Write(shstrtab)
	b.Write(make([]byte, shOff-uint64(b.Len())))
	for _, sh := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: dataOff, Size: size, Addralign: 4},
		{Name: uint32(len(name) + 2), Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstrtab)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, sh)
	}
	return b.Bytes()
}

func TestLoadBytesNamesItsInput(t *testing.T) {
	_, err := fbtf.LoadBytes(fbtf.EmbeddedName, []byte("not BTF"))
	assert.EqualError(t, err, "embedded snapshot: invalid BTF: parsing .BTF header: read header: buffer too small")
}

func TestLoadEscapesMessages(t *testing.T) {
	// cilium/ebpf's message names the struct as it is; here its name holds
	// a newline and invalid UTF-8, and its member's name points into the
	// middle of a string.
	blob := marshal(t, &cbtf.Struct{Name: "a\nb\xff", Size: 4, Members: []cbtf.Member{{Name: "xy", Type: u32}}})
	member := 24 + 12 // header, struct [1]
	binary.LittleEndian.PutUint32(blob[member:], binary.LittleEndian.Uint32(blob[member:])+1)
	_, err := fbtf.LoadBytes("odd.btf", blob)
	assert.EqualError(t, err, `odd.btf: invalid BTF: inflate type: struct a\nb\xff (id 1): can't get name for member 0: offset 7 is not the beginning of a string`)
}
