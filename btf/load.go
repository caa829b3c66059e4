package btf

import (
	"bytes"
	"debug/elf"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"

	cbtf "github.com/cilium/ebpf/btf"
)

// KernelPath is where a running Linux kernel exposes its BTF.
const KernelPath = "/sys/kernel/btf/vmlinux"

// MaxFileSize is the most BTF LoadFile reads: of a raw BTF file, or of the
// .BTF section of an ELF file (the rest of an ELF file is not read; a
// vmlinux with debug information is far larger). A whole kernel's BTF is
// 5-6 MiB; 64 MiB leaves ten times that and keeps a wrong path (a disk
// image, a core dump) from being read into memory.
const MaxFileSize = 64 << 20

//go:embed default.btf
var embedded []byte

// LoadFile reads BTF from a raw BTF blob (such as /sys/kernel/btf/vmlinux or a
// snapshot written by [Snapshot]) or from an ELF file with a .BTF section,
// and [Check]s it. It reads only regular files, at most MaxFileSize bytes
// of BTF. Every error starts with path: "x.btf: invalid BTF: ...".
func LoadFile(path string) (*cbtf.Spec, error) {
	spec, err := loadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

func loadFile(path string) (*cbtf.Spec, error) {
	raw, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(raw, nil)
}

// readFile returns the raw BTF in the file at path: the file itself, or
// the .BTF section of an ELF file, bounded by MaxFileSize.
func readFile(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO blocks, opening a device may do
	// anything.
	st, err := os.Stat(path)
	if err != nil {
		return nil, pathless(err)
	}
	if err := regular(st); err != nil {
		return nil, err
	}
	// O_NONBLOCK: should path have become a FIFO since, open returns
	// rather than waits for a writer, and the second check refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, pathless(err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, pathless(err)
	}
	if err := regular(st); err != nil {
		return nil, err
	}
	var magic [6]byte
	n, _ := f.ReadAt(magic[:], 0)
	if n >= 4 && string(magic[:4]) == elf.ELFMAG {
		return elfBTF(f)
	}
	if err := compressed(magic[:n]); err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, tooLarge("file", st.Size())
	}
	raw, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, pathless(err)
	}
	if len(raw) > MaxFileSize {
		return nil, tooLarge("file", int64(len(raw)))
	}
	return raw, nil
}

// compressed refuses a compressed file (a kernel module as distributions
// ship it, loop.ko.xz) with a hint, rather than as invalid BTF.
func compressed(magic []byte) error {
	for _, c := range []struct{ magic, name, tool string }{
		{"\xfd7zXZ\x00", "xz", "xz -dk"},
		{"\x28\xb5\x2f\xfd", "zstd", "zstd -d"},
		{"\x1f\x8b", "gzip", "gunzip -k"},
	} {
		if bytes.HasPrefix(magic, []byte(c.magic)) {
			return fmt.Errorf("is compressed with %s: decompress it first (%s FILE) and read the result", c.name, c.tool)
		}
	}
	return nil
}

// LoadBytes reads BTF from data, raw or ELF, and checks it as LoadFile
// does; errors start with name.
func LoadBytes(name string, data []byte) (*cbtf.Spec, error) {
	spec, err := loadBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return spec, nil
}

func loadBytes(data []byte) (*cbtf.Spec, error) {
	raw, err := readBytes(data)
	if err != nil {
		return nil, err
	}
	return parse(raw, nil)
}

// readBytes is readFile for data in memory.
func readBytes(data []byte) ([]byte, error) {
	if bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return elfBTF(bytes.NewReader(data))
	}
	if err := compressed(data); err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge("input", int64(len(data)))
	}
	return data, nil
}

// regular refuses anything but a regular file.
func regular(st fs.FileInfo) error {
	m := st.Mode()
	var what string
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	default:
		what = "not a regular file"
		return errors.New(what)
	}
	return fmt.Errorf("is %s, not a regular file", what)
}

func tooLarge(what string, size int64) error {
	return fmt.Errorf("%s too large: %d bytes, more than the %d MiB BTF may take", what, size, MaxFileSize>>20)
}

// pathless drops the operation and path from an *fs.PathError: the caller
// starts the message with the path.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// elfBTF reads the .BTF section of an ELF file, at most MaxFileSize bytes.
func elfBTF(r io.ReaderAt) (raw []byte, err error) {
	defer func() {
		// debug/elf may panic on malformed input (cilium/ebpf guards it
		// the same way).
		if p := recover(); p != nil {
			raw, err = nil, fmt.Errorf("not a valid ELF file: %v", p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not a valid ELF file: %w", err)
	}
	sec := f.Section(".BTF")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, errors.New("ELF file without a .BTF section")
	}
	if sec.Size > MaxFileSize {
		return nil, tooLarge(".BTF section", int64(min(sec.Size, 1<<62)))
	}
	raw, err = io.ReadAll(io.LimitReader(sec.Open(), MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read .BTF section: %w", err)
	}
	if len(raw) > MaxFileSize {
		return nil, tooLarge(".BTF section", int64(len(raw)))
	}
	if sec.Flags&elf.SHF_COMPRESSED == 0 && uint64(len(raw)) != sec.Size {
		return nil, fmt.Errorf(".BTF section truncated: %d of %d bytes in the file", len(raw), sec.Size)
	}
	if len(raw) >= 2 && f.ByteOrder.Uint16(raw) != 0xeb9f {
		return nil, fmt.Errorf("invalid BTF: .BTF section not in the ELF file's byte order (%s)", f.ByteOrder)
	}
	return raw, nil
}

// parse decodes raw BTF, split on base when base is not nil, and checks
// it.
func parse(raw []byte, base *cbtf.Spec) (spec *cbtf.Spec, err error) {
	defer func() {
		if p := recover(); p != nil {
			spec, err = nil, fmt.Errorf("invalid BTF: cilium/ebpf failed to decode it: %v", p)
		}
	}()
	if base != nil {
		spec, err = cbtf.LoadSplitSpecFromReader(bytes.NewReader(raw), base)
		if err != nil {
			return nil, fmt.Errorf("invalid BTF, or split BTF on another vmlinux's (a module's BTF builds on the vmlinux BTF of the same kernel build): %w", escaped{err})
		}
	} else {
		spec, err = cbtf.LoadSpecFromReader(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("invalid BTF: %w", escaped{err})
	}
	if err := Check(spec); err != nil {
		return nil, fmt.Errorf("invalid BTF: %w", escaped{err})
	}
	return spec, nil
}

// escaped shows err's message with control characters and invalid UTF-8
// escaped: cilium/ebpf's messages quote names from the file as they are.
type escaped struct{ err error }

func (e escaped) Unwrap() error { return e.err }

func (e escaped) Error() string {
	msg := e.err.Error()
	var b strings.Builder
	for i, r := range msg {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(msg[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// LoadKernel reads the running kernel's BTF. Only call it when the caller has
// decided that the running kernel is the source it wants. It is not
// [Check]ed: the kernel checked it when it loaded it, and checking a whole
// kernel's BTF costs a fifth of a second.
func LoadKernel() (*cbtf.Spec, error) {
	spec, err := cbtf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF: %w", err)
	}
	return spec, nil
}

// EmbeddedName names the embedded snapshot in messages.
const EmbeddedName = "embedded snapshot"

var embeddedSpec = sync.OnceValues(func() (*cbtf.Spec, error) {
	return LoadBytes(EmbeddedName, embedded)
})

// Embedded returns the snapshot built into fentrygen: the types reachable from
// the functions its examples and tests use, taken from a Linux 6.18 vmlinux.
// It is the source of last resort, checked like a file. The returned spec
// is shared: copy it before changing it.
func Embedded() (*cbtf.Spec, error) { return embeddedSpec() }

// EmbeddedSize is the size in bytes of the embedded snapshot.
func EmbeddedSize() int { return len(embedded) }
