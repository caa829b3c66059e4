package vminit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ModuleList is the file, in /lib/modules/RELEASE, that lists the kernel
// modules to load before the program starts: one file name of that
// folder a line, dependencies first. Files for several kernels may sit
// side by side; the running kernel's release picks its folder.
const ModuleList = "vmtest.load"

// loadModules loads, with finit_module, the modules listed for the
// running kernel. A module already there (built in or loaded) is fine.
func loadModules(release string) error {
	dir := filepath.Join("/lib/modules", release)
	names, err := optionalLines(filepath.Join(dir, ModuleList))
	if err != nil {
		return err
	}
	if len(names) == 0 {
		if others, _ := filepath.Glob("/lib/modules/*/" + ModuleList); len(others) > 0 {
			return fmt.Errorf("modules were packed for %v, none for this kernel (%s)", others, release)
		}
	}
	for _, name := range names {
		if err := loadModule(filepath.Join(dir, name)); err != nil {
			return err
		}
		fmt.Printf("vminit: loaded module %s\n", name)
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	return fmt.Errorf("load module %s: finit_module: %w", path, err)
}
