package runtime

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// kallsymsPath lists the kernel's symbols with their addresses (zeroes for
// a reader without CAP_SYSLOG).
const kallsymsPath = "/proc/kallsyms"

// symbolAddrs reads the addresses of the functions called names from r,
// in /proc/kallsyms' format ("ffffffff81234560 T vfs_read"). A static
// function of one name in several places has several.
func symbolAddrs(r io.Reader, names []string) (map[string][]uint64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]uint64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !want[f[2]] || (f[1] != "t" && f[1] != "T") {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", kallsymsPath, sc.Text(), err)
		}
		if addr != 0 {
			out[f[2]] = append(out[f[2]], addr)
		}
	}
	return out, sc.Err()
}

// maxFuncIPSkew bounds how far past a function's symbol the address the
// trampoline reports may be (an IBT landing pad, a patched call).
const maxFuncIPSkew = 16

// TargetOf names the function of the multi-function probe name whose
// address is ip, as [FuncIP] gave it in the kernel: the one of
// Targets(name) whose symbol (/proc/kallsyms) is at ip or just below it.
// It returns "" when none is; reading the symbols needs CAP_SYSLOG.
func (o *Objects) TargetOf(name string, ip uint64) (string, error) {
	if o.symbols == nil {
		var names []string
		for _, fns := range o.Targets {
			names = append(names, fns...)
		}
		f, err := os.Open(kallsymsPath)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if o.symbols, err = symbolAddrs(f, names); err != nil {
			return "", err
		}
	}
	best, dist := "", uint64(maxFuncIPSkew+1)
	for _, fn := range o.Targets[name] {
		for _, a := range o.symbols[fn] {
			if a <= ip && ip-a < dist {
				best, dist = fn, ip-a
			}
		}
	}
	return best, nil
}
