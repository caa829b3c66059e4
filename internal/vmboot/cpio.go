package vmboot

import (
	"fmt"
	"io"
	"path"
	"slices"
)

// File is one regular file of an initramfs.
type File struct {
	// Mode is its permission bits (0o755).
	Mode uint32
	Data []byte
}

// writeCpio writes files (by path, without a leading slash) as a cpio
// archive in the "newc" format the kernel unpacks into its rootfs, with an
// entry for every folder on the way: the kernel does not make them itself.
func writeCpio(w io.Writer, files map[string]File) error {
	dirs := map[string]bool{}
	for n := range files {
		for d := path.Dir(n); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	names := make([]string, 0, len(files)+len(dirs))
	for n := range files {
		names = append(names, n)
	}
	for d := range dirs {
		names = append(names, d)
	}
	// Sorted, a folder comes before what it holds.
	slices.Sort(names)
	ino := uint32(1)
	for _, n := range names {
		var err error
		if dirs[n] {
			err = cpioEntry(w, ino, n, 0o040755, 2, nil)
		} else {
			err = cpioEntry(w, ino, n, 0o100000|files[n].Mode, 1, files[n].Data)
		}
		if err != nil {
			return err
		}
		ino++
	}
	return cpioEntry(w, 0, "TRAILER!!!", 0, 1, nil)
}

func cpioEntry(w io.Writer, ino uint32, name string, mode, nlink uint32, data []byte) error {
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, (4-len(data)%4)%4))
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
