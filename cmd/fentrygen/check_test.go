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
	"github.com/fentrygen/fentrygen/runtime"
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

// TestCheckTestKernels checks a probe that reads task_struct.mm_cid, an int
// that Linux 6.4 added and 7.x made a struct, against the test kernels: 6.1
// lacks it, 6.12 has it as generated, 7.x has it in another size.
func TestCheckTestKernels(t *testing.T) {
	vmtest.KernelBTFs(t) // skips (or fails, as CI requires) without them
	dir := testmod.Write(t, map[string][]byte{"probes.go": []byte(`package probes

//fentry:tcp_v4_connect args= task
func onConnect(p *OnConnect) { _ = p.Task.MmCid() }
`)})
	stdout, stderr, err := runIn(t, dir, "check", "-kernels", "test")
	require.ErrorIs(t, err, errReported, stderr)
	assert.Contains(t, stdout, `onConnect on 6.1: task_struct.mm_cid: struct task_struct has no such member "mm_cid" (did you mean rmid?) (read at probes.go:4:43)`)
	assert.NotContains(t, stdout, "onConnect on 6.12:")
	assert.Contains(t, stdout, "onConnect on 7.x: task_struct.mm_cid is 24 bytes, 4 when generated (read at probes.go:4:43)")
	assert.Regexp(t, `onConnect \(fentry tcp_v4_connect\)\s.*FAIL\s+ok\s+FAIL\n`, stdout)
}

// TestFsessionMechanism: describe and check say how an fsession reaches
// each test kernel: natively on 7.x, as an fentry+fexit pair on 6.1 and
// 6.12, whose BTF has no BPF_TRACE_FSESSION.
func TestFsessionMechanism(t *testing.T) {
	vmtest.KernelBTFs(t)
	out, _, err := runIn(t, "", "describe", "-btf", abs(t, snapshotBTF), "-kernels", "test", "vfs_read")
	require.NoError(t, err)
	assert.Regexp(t, `6\.1 +fentry, fexit; fsession: allowed: as an fentry\+fexit pair sharing a per-call map \(BPF_TRACE_FSESSION \(Linux 7\.0\) not in this kernel\);`, out)
	assert.Regexp(t, `6\.12 +fentry, fexit; fsession: allowed: as an fentry\+fexit pair`, out)
	assert.Regexp(t, `7\.x +fentry, fexit; fsession: allowed: native \(one BPF_TRACE_FSESSION program, one link\);`, out)

	dir := testmod.Write(t, map[string][]byte{"probes.go": []byte(`package probes

import "github.com/fentrygen/fentrygen/runtime"

var lat runtime.Log2Hist

//fsession:vfs_read args= ret
func onRead(p *OnRead) {
	p.AtEntry(func(e *OnReadEntry) { e.SetCookie(runtime.KtimeNs()) })
	p.AtExit(func(x *OnReadExit) { lat.Record(x, runtime.KtimeNs().SubV(x.Cookie)) })
}
`)})
	stdout, stderr, err := runIn(t, dir, "check", "-kernels", "test")
	require.NoError(t, err, stderr)
	assert.Regexp(t, `onRead \(fsession vfs_read\)\s.*ok pair\s+ok pair\s+ok fsession\n`, stdout)
	assert.Contains(t, stdout, "onRead on 6.1: fentry+fexit pair: BPF_TRACE_FSESSION (Linux 7.0) not in this kernel")
	assert.Contains(t, stdout, "onRead on 7.x: native fsession")

	stdout, _, err = runIn(t, dir, "check", "-json", "-kernels", "test")
	require.NoError(t, err)
	var rows []checkRow
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, runtime.SessionNative, rows[0].Kernels["7.x"].Mechanism)
	assert.Equal(t, runtime.SessionPair, rows[0].Kernels["6.12"].Mechanism)
	assert.Contains(t, rows[0].Kernels["6.1"].Why, "BPF_TRACE_FSESSION")
}

// TestMultiMechanism: describe and check say how a probe on several
// functions attaches on each test kernel: one tracing multi-link on 7.x,
// one link per function on 6.1 and 6.12, whose BTF has no
// BPF_TRACE_FENTRY_MULTI.
func TestMultiMechanism(t *testing.T) {
	vmtest.KernelBTFs(t)
	out, _, err := runIn(t, "", "describe", "-btf", abs(t, snapshotBTF), "-kernels", "test", "vfs_read")
	require.NoError(t, err)
	assert.Regexp(t, `6\.1 +fentry, fexit; .*; multi: one trampoline link per function \(BPF_TRACE_FENTRY_MULTI \(tracing multi-links, Linux 7\) not in this kernel\)\n`, out)
	assert.Regexp(t, `7\.x +fentry, fexit; .*; multi: one tracing multi-link for all the functions`, out)

	dir := testmod.Write(t, map[string][]byte{"probes.go": []byte(`package probes

import "github.com/fentrygen/fentrygen/runtime"

var calls runtime.Hash[runtime.U32, runtime.U64]

//fentry:vfs_read,tcp_close args=
func onAny(p *OnAny) { calls.Add(p, p.FuncIndex(), runtime.Uint64(1)) }
`)})
	stdout, stderr, err := runIn(t, dir, "check", "-kernels", "test")
	require.NoError(t, err, stderr)
	assert.Regexp(t, `onAny \(fentry vfs_read,tcp_close\)\s.*ok per-function\s+ok per-function\s+ok multi\n`, stdout)
	assert.Contains(t, stdout, "onAny on 6.12: one link per function: BPF_TRACE_FENTRY_MULTI (tracing multi-links, Linux 7) not in this kernel")
	assert.Contains(t, stdout, "onAny on 7.x: tracing multi-link")

	stdout, _, err = runIn(t, dir, "check", "-json", "-kernels", "test")
	require.NoError(t, err)
	var rows []checkRow
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, runtime.MultiLink, rows[0].Kernels["7.x"].Mechanism)
	assert.Equal(t, runtime.PerFunction, rows[0].Kernels["6.1"].Mechanism)
}
