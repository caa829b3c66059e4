package vmtest

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/fentrygen/fentrygen/internal/vmboot"
	"golang.org/x/sys/unix"
)

const (
	// ext4Dir is where vminit mounts the disk Ext4 attaches.
	ext4Dir = "/mnt/ext4"
	// ext4Device is that disk in the guest: the first namespace of the
	// first NVMe controller (CONFIG_BLK_DEV_NVME=y in both kernels).
	ext4Device = "/dev/nvme0n1"
	// ext4Size is the disk's size; the image on the host is sparse.
	ext4Size = 128 << 20
)

// Ext4Dir is, in a guest whose package asked for [Ext4], the folder where
// its ext4 filesystem is mounted; "" anywhere else.
func Ext4Dir() string {
	var st unix.Statfs_t
	if !InVM() || unix.Statfs(ext4Dir, &st) != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		return ""
	}
	return ext4Dir
}

// findMke2fs finds mke2fs, also where a non-root PATH leaves it out.
func findMke2fs() (string, error) {
	if p, err := exec.LookPath("mke2fs"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mke2fs", "/sbin/mke2fs"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", vmboot.MissingError{Err: fmt.Errorf("mke2fs not found, needed by vmtest.Ext4 (apt-get install e2fsprogs)")}
}

// newExt4Disk makes a fresh, sparse ext4 image and returns it open and
// already unlinked, for QEMU to use as /dev/fd/N.
func newExt4Disk(mke2fs string) (*os.File, error) {
	f, err := os.CreateTemp("", "fentrygen-ext4-*.img")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if err := f.Truncate(ext4Size); err != nil {
		f.Close()
		return nil, err
	}
	if out, err := exec.Command(mke2fs, "-t", "ext4", "-F", "-q", f.Name()).CombinedOutput(); err != nil {
		f.Close()
		return nil, fmt.Errorf("mke2fs: %w\n%s", err, out)
	}
	return f, nil
}
