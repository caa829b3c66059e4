package klockstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ksym is a kernel symbol of /proc/kallsyms.
type ksym struct {
	addr uint64
	name string
}

// ksyms are the kernel's symbols sorted by address, then name, as
// libbpf-tools' ksyms__load sorts them.
type ksyms []ksym

// loadKsyms reads /proc/kallsyms (every symbol type, modules' too).
func loadKsyms() (ksyms, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseKsyms(f)
}

// parseKsyms reads kallsyms lines: "ADDR TYPE NAME [MODULE]".
func parseKsyms(r io.Reader) (ksyms, error) {
	var syms ksyms
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			return nil, fmt.Errorf("kallsyms: bad line %q", sc.Text())
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("kallsyms: bad line %q", sc.Text())
		}
		syms = append(syms, ksym{addr, f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(syms, func(i, j int) bool {
		if syms[i].addr != syms[j].addr {
			return syms[i].addr < syms[j].addr
		}
		return syms[i].name < syms[j].name
	})
	return syms, nil
}

// mapAddr is the symbol addr falls in: the last with an address at or
// below it (ksyms__map_addr), or nil.
func (k ksyms) mapAddr(addr uint64) *ksym {
	i := sort.Search(len(k), func(i int) bool { return k[i].addr > addr }) - 1
	if i < 0 {
		return nil
	}
	return &k[i]
}

// get is the first symbol called name (ksyms__get_symbol), or nil.
func (k ksyms) get(name string) *ksym {
	for i := range k {
		if k[i].name == name {
			return &k[i]
		}
	}
	return nil
}

// symname is "NAME+0xOFF" for pc, or "Unknown".
func (k ksyms) symname(pc uint64) string {
	s := k.mapAddr(pc)
	if s == nil {
		return "Unknown"
	}
	return fmt.Sprintf("%s+0x%x", s.name, pc-s.addr)
}

// lockName is the symbol exactly at addr, or "no-ksym".
func (k ksyms) lockName(addr uint64) string {
	if s := k.mapAddr(addr); s != nil && s.addr == addr {
		return s.name
	}
	return "no-ksym"
}
