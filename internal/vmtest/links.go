package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// Pid is the tool's process id.
func (r *Running) Pid() int { return r.cmd.Process.Pid }

// Links describes the BPF links process pid holds, sorted, each as "TYPE
// PROG": the link type as /proc shows it (tracing for fentry and fexit,
// perf for kprobes) and the name of its program as the kernel keeps
// it (15 bytes at most).
func Links(pid int) []string {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	var out []string
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err != nil || target != "anon_inode:bpf_link" {
			continue
		}
		info, err := os.ReadFile(strings.Replace(fd, "/fd/", "/fdinfo/", 1))
		if err != nil {
			continue
		}
		typ, prog := "?", "?"
		for _, line := range strings.Split(string(info), "\n") {
			key, value, _ := strings.Cut(line, ":")
			value = strings.TrimSpace(value)
			switch key {
			case "link_type":
				typ = value
			case "prog_id":
				id, _ := strconv.ParseUint(value, 10, 32)
				if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
					if pi, err := p.Info(); err == nil {
						prog = pi.Name
					}
					p.Close()
				}
			}
		}
		out = append(out, typ+" "+prog)
	}
	slices.Sort(out)
	return out
}
