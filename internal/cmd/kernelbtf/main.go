// Command kernelbtf writes the BTF of a test kernel, and of modules of it,
// into a folder laid out as the guest's /sys/kernel/btf: vmlinux and one
// file per module. Feed it to fentrygen as -btf DIR/vmlinux (the modules
// beside it are found) to pin a snapshot of what the guest will see:
//
//	go run ./internal/cmd/kernelbtf -kernel 6.12 -o /tmp/btf612 loop
//	go run ./cmd/fentrygen snapshot -btf /tmp/btf612/vmlinux -o fentrygen.btf loop:lo_ioctl
//
// The kernels are Debian's, downloaded into the cache as the VM tests do.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fentrygen/fentrygen/internal/vmboot"
)

func main() {
	kernel := flag.String("kernel", "6.12", "the test kernel `series`")
	out := flag.String("o", "", "the `folder` to write into")
	flag.Parse()
	if err := run(*kernel, *out, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "kernelbtf: %v\n", err)
		os.Exit(1)
	}
}

func run(series, out string, modules []string) error {
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	list, err := vmboot.SelectSeries(series)
	if err != nil {
		return err
	}
	kernels, err := vmboot.KernelsOf(list)
	if err != nil {
		return err
	}
	k := kernels[0]
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	raw, err := k.RawBTF()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "vmlinux"), raw, 0o644); err != nil {
		return err
	}
	for _, m := range modules {
		raw, err := k.ModuleRawBTF(m)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, m), raw, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s: kernel %s (%s), modules %v\n", out, k.Name, k.Package, modules)
	return nil
}
