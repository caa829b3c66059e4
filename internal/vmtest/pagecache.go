package vmtest

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ColdFile writes a file of pages pages at path (made or truncated),
// syncs it and drops it from the page cache (posix_fadvise
// POSIX_FADV_DONTNEED), so that reading it next misses every page; it fails
// the test unless none stays resident. On a disk filesystem ([Ext4Dir]):
// tmpfs pages live only in the cache.
func ColdFile(t *testing.T, path string, pages int) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	page := os.Getpagesize()
	buf := bytes.Repeat([]byte{'r'}, page)
	for i := range pages {
		if _, err := unix.Pwrite(fd, buf, int64(i*page)); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	if err := unix.Fsync(fd); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
	Uncache(t, path)
	if n := Resident(t, path); n != 0 {
		t.Fatalf("%s: %d of %d pages still in the page cache after POSIX_FADV_DONTNEED", path, n, pages)
	}
}

// Uncache drops the file at path from the page cache (posix_fadvise
// POSIX_FADV_DONTNEED): its clean, unmapped pages go.
func Uncache(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("posix_fadvise %s: %v", path, err)
	}
}

// WillNeed asks the kernel to read the file at path ahead
// (posix_fadvise POSIX_FADV_WILLNEED: force_page_cache_ra, up to the
// device's read-ahead limit), and returns once it has been issued.
func WillNeed(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_WILLNEED); err != nil {
		t.Fatalf("posix_fadvise %s: %v", path, err)
	}
}

// Resident is how many pages of the file at path are in the page cache
// (mincore(2) of a mapping of it, which reads nothing in).
func Resident(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if st.Size == 0 {
		return 0
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %s: %v", path, err)
	}
	defer unix.Munmap(mem)
	page := os.Getpagesize()
	vec := make([]byte, (int(st.Size)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// ReadPages reads the file at path from start to end, size bytes per
// read(2) (pread at increasing offsets), and returns the bytes read.
func ReadPages(t *testing.T, path string, size int) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, size)
	total := 0
	for {
		n, err := unix.Pread(fd, buf, int64(total))
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// Folios is how many folios hold the file at path's resident pages: a
// page cache event (an add, an access) is one per folio, and a folio is a
// page but on filesystems with large folios (ext4 from Linux 6.16). It maps
// the file, faults each resident page in (reading nothing from disk), and
// counts the pages that are not a compound page's tail (/proc/self/pagemap
// for the frame, /proc/kpageflags for its flags; root only).
func Folios(t *testing.T, path string) int {
	t.Helper()
	const present, pfnMask, compoundTail = 1 << 63, 1<<55 - 1, 1 << 16
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size == 0 {
		t.Fatalf("stat %s: %v (size %d)", path, err, st.Size)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %s: %v", path, err)
	}
	defer unix.Munmap(mem)
	page := os.Getpagesize()
	pages := (len(mem) + page - 1) / page
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pagemap.Close()
	flags, err := os.Open("/proc/kpageflags")
	if err != nil {
		t.Fatal(err)
	}
	defer flags.Close()
	folios := 0
	var entry [8]byte
	for i := range pages {
		if vec[i]&1 == 0 {
			continue
		}
		faultSink += mem[i*page] // fault the resident page into the mapping
		addr := uintptr(unsafe.Pointer(&mem[i*page]))
		if _, err := pagemap.ReadAt(entry[:], int64(addr/uintptr(page))*8); err != nil {
			t.Fatalf("pagemap: %v", err)
		}
		pm := binary.LittleEndian.Uint64(entry[:])
		if pm&present == 0 || pm&pfnMask == 0 {
			t.Fatalf("pagemap: page %d of %s: no frame (%#x)", i, path, pm)
		}
		if _, err := flags.ReadAt(entry[:], int64(pm&pfnMask)*8); err != nil {
			t.Fatalf("kpageflags: %v", err)
		}
		if binary.LittleEndian.Uint64(entry[:])&compoundTail == 0 {
			folios++
		}
	}
	return folios
}

// faultSink keeps Folios' reads: the compiler drops a load nothing uses.
var faultSink byte
