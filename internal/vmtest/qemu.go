package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// hostEnv is what booting needs, found once per process.
type hostEnv struct {
	qemu    string
	kernels []Kernel
}

var host = sync.OnceValues(func() (*hostEnv, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, missingError{fmt.Errorf("qemu-system-x86_64 not found: %w", err)}
	}
	kernels, err := Kernels()
	if err != nil {
		return nil, missingError{err}
	}
	return &hostEnv{qemu: qemu, kernels: kernels}, nil
})

// initrdSpec says what goes into an initramfs.
type initrdSpec struct {
	// name is the program's file, /name in the guest.
	name string
	// goArgs build it with `go ARGS... -o FILE LAST` (LAST: the package).
	goArgs []string
	// env is put in the environment of the program in the guest.
	env []string
	// mounts are lines "DEVICE DIR FSTYPE" vminit mounts before it starts
	// the program, waiting for the device to appear.
	mounts []string
	// files are more files, by path.
	files map[string]cpioFile
}

// buildInitrd packs the static vminit as /init and, as /NAME, what
// `go ARGS -o FILE` builds with CGO_ENABLED=0. It returns the initramfs
// open and already unlinked: nothing is left on disk once it is closed,
// however the process ends. QEMU reads it as /dev/fd/N.
func buildInitrd(spec initrdSpec) (*os.File, error) {
	dir, err := os.MkdirTemp("", "fentrygen-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	initBin := filepath.Join(dir, "init")
	progBin := filepath.Join(dir, spec.name)
	last := len(spec.goArgs) - 1
	prog := append(append([]string{}, spec.goArgs[:last]...), "-o", progBin, spec.goArgs[last])
	for _, args := range [][]string{
		{"build", "-o", initBin, "github.com/fentrygen/fentrygen/internal/vmtest/vminit"},
		prog,
	} {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	files := map[string]cpioFile{}
	for name, src := range map[string]string{"init": initBin, spec.name: progBin} {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		files[name] = cpioFile{mode: 0o755, data: data}
	}
	for name, f := range spec.files {
		files[name] = f
	}
	files["vmtest.env"] = cpioFile{mode: 0o644, data: []byte(strings.Join(append(spec.env, EnvMode+"="+os.Getenv(EnvMode)), "\n") + "\n")}
	if len(spec.mounts) > 0 {
		files["vmtest.mounts"] = cpioFile{mode: 0o644, data: []byte(strings.Join(spec.mounts, "\n") + "\n")}
	}
	f, err := os.CreateTemp(dir, "initrd-")
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeCpio(w, files); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// boot runs argv in the guest: the kernel command line's words after "--"
// reach /init, which runs them. Words must not contain spaces. A disk, if
// not nil, is attached as an NVMe drive.
func (h *hostEnv) boot(k Kernel, initrd, disk *os.File, argv []string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout())
	defer cancel()
	for _, a := range argv {
		if strings.ContainsAny(a, " \t\"") {
			return result{}, fmt.Errorf("guest argument %q: no spaces or quotes on a kernel command line", a)
		}
	}
	// ExtraFiles become fds 3, 4, ... in QEMU.
	args := []string{
		"-accel", "tcg", "-cpu", "max", "-m", "1G", "-smp", "2",
		"-kernel", k.Vmlinuz, "-initrd", "/dev/fd/3",
		"-append", "console=ttyS0 quiet panic=-1 -- " + strings.Join(argv, " "),
		"-nographic", "-no-reboot", "-nic", "none",
	}
	extra := []*os.File{initrd}
	if disk != nil {
		args = append(args,
			"-drive", "file=/dev/fd/4,if=none,format=raw,id=d0",
			"-device", "nvme,serial=fentrygen,drive=d0")
		extra = append(extra, disk)
	}
	cmd := exec.CommandContext(ctx, h.qemu, args...)
	cmd.ExtraFiles = extra
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	res := parse(out.String())
	res.elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s did not power off within %v (FENTRYGEN_VM_TIMEOUT)", strings.Join(argv, " "), Timeout())
	}
	if err != nil {
		return res, fmt.Errorf("qemu: %w", err)
	}
	if res.exit == -1 {
		return res, fmt.Errorf("no %s line: the guest did not finish", markerExit)
	}
	return res, nil
}
