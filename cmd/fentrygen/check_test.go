package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	cbtf "github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fentrygen/fentrygen/internal/testmod"
	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// renamedKernel writes a BTF where tcp_v4_connect's first argument is
// called s, not sk, and sock_common has no skc_family.
func renamedKernel(t *testing.T) string {
	t.Helper()
	u16 := &cbtf.Int{Name: "u16", Size: 2}
	i32 := &cbtf.Int{Name: "int", Size: 4, Encoding: cbtf.Signed}
	common := &cbtf.Struct{Name: "sock_common", Size: 8, Members: []cbtf.Member{{Name: "skc_num", Type: u16}}}
	sock := &cbtf.Struct{Name: "sock", Size: 8, Members: []cbtf.Member{{Name: "__sk_common", Type: common}}}
	sockaddr := &cbtf.Struct{Name: "sockaddr", Size: 16}
	fn := &cbtf.Func{Name: "tcp_v4_connect", Type: &cbtf.FuncProto{Return: i32, Params: []cbtf.FuncParam{
		{Name: "s", Type: &cbtf.Pointer{Target: sock}}, {Name: "uaddr", Type: &cbtf.Pointer{Target: sockaddr}}, {Name: "addr_len", Type: i32},
	}}}
	b, err := cbtf.NewBuilder([]cbtf.Type{fn}, nil)
	require.NoError(t, err)
	raw, err := b.Marshal(nil, nil)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "renamed.btf")
	require.NoError(t, os.WriteFile(path, raw, 0o644))
	return path
}

// TestCheck: a probe checked against two kernels, one as generated and one
// where its argument was renamed and its member removed, fails on the
// second only, with what changed; -json says the same.
func TestCheck(t *testing.T) {
	dir := testmod.Write(t, map[string][]byte{"probes.go": []byte(stub)})
	snap, renamed := abs(t, snapshotBTF), renamedKernel(t)
	stdout, stderr, err := runIn(t, dir, "check", "-btf", snap, "-btf", renamed)
	require.ErrorIs(t, err, errReported, stderr)
	assert.Regexp(t, `onExit \(fexit tcp_v4_connect\)\s+ok\s+(ok\s+)?ok\s+FAIL`, stdout)
	assert.Contains(t, stdout, `onExit on renamed.btf: unknown argument "sk" of tcp_v4_connect (have s, uaddr, addr_len)`)
	assert.Contains(t, stdout, `onExit on renamed.btf: sock_common.skc_family: struct sock_common has no such member "skc_family"`)

	stdout, _, err = runIn(t, dir, "check", "-json", "-btf", snap, "-btf", renamed)
	require.ErrorIs(t, err, errReported)
	var rows []checkRow
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Len(t, rows, 1)
	assert.True(t, rows[0].Kernels["vmlinux-min.btf"].OK())
	assert.Len(t, rows[0].Kernels["renamed.btf"].Problems, 2)

	_, _, err = runIn(t, dir, "check", "-btf", snap)
	assert.NoError(t, err, "every kernel fine: exit 0")
	_, _, err = runIn(t, dir, "check", "-kernels", "all")
	assert.ErrorAs(t, err, new(usageError))
}

// TestCheckTestKernels checks a probe that reads task_struct.mm_cid, which
// Linux 6.4 added, against the test kernels: 6.1 lacks it, 6.12 has it,
// and 7.x made it a struct.
func TestCheckTestKernels(t *testing.T) {
	vmtest.KernelBTFs(t) // skips (or fails, as CI requires) without them
	dir := testmod.Write(t, map[string][]byte{"probes.go": []byte(`package probes

//fentry:tcp_v4_connect args= task
func onConnect(p *OnConnect) { _ = p.Task.MmCid() }
`)})
	stdout, stderr, err := runIn(t, dir, "check", "-kernels", "test")
	require.ErrorIs(t, err, errReported, stderr)
	assert.Contains(t, stdout, `onConnect on 6.1: task_struct.mm_cid: struct task_struct has no such member "mm_cid"`)
	assert.NotContains(t, stdout, "onConnect on 6.12:")
	assert.Contains(t, stdout, "onConnect on 7.x: task_struct.mm_cid is 24 bytes, 4 when generated")
	assert.Regexp(t, `onConnect \(fentry tcp_v4_connect\)\s.*FAIL\s+ok\s+FAIL\n`, stdout)
}
