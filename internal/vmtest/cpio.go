package vmtest

import (
	"fmt"
	"io"
	"sort"
)

// cpioFile is one regular file of an initramfs.
type cpioFile struct {
	mode uint32
	data []byte
}

// writeCpio writes files (by path, without a leading slash) as a cpio
// archive in the "newc" format the kernel unpacks into its rootfs.
func writeCpio(w io.Writer, files map[string]cpioFile) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	for _, n := range names {
		f := files[n]
		if err := cpioEntry(w, ino, n, 0o100000|f.mode, f.data); err != nil {
			return err
		}
		ino++
	}
	return cpioEntry(w, 0, "TRAILER!!!", 0, nil)
}

func cpioEntry(w io.Writer, ino uint32, name string, mode uint32, data []byte) error {
	nlink := uint32(1)
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, err := w.Write(buf)
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
