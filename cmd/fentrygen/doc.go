// Command fentrygen generates typed fentry, fexit, fmod_ret, tp_btf and
// fsession probes from annotated Go stubs.
//
// Usage:
//
//	fentrygen [-btf file] [-btf-module [name=]file]... [-o file] [-tags a,b] [-depth n] [-debug-model] [packages]
//	fentrygen describe [-btf file] [-btf-module [name=]file]... [-kernels test] [module:]function
//	fentrygen new [-kind fentry|fexit|fmod_ret|fsession] [-btf file] [-btf-module [name=]file]... [-o file] [module:]function
//	fentrygen snapshot [-btf file] [-btf-module [name=]file]... [-types a,b] [-tracepoints a,b] [-depth n] -o out.btf [[module:]function...]
//	fentrygen check [-btf file]... [-kernels test] [-json] [packages]
//	fentrygen vm [-kernels 6.1,6.12,7.x] [-modules a,b] [-timeout d] program [arguments]
//	fentrygen vm -list [-kernels 6.1,6.12,7.x]
//
// Under go:generate it runs on the current package:
//
//	//go:generate go tool fentrygen
//
// with the tool pinned in go.mod's tool block (go get -tool
// github.com/fentrygen/fentrygen/cmd/fentrygen).
//
// # Annotations
//
// A probe is an unexported function taking a pointer to the context type
// fentrygen generates for it, named after it:
//
//	//fentry:tcp_v4_connect args=sk,uaddr:sockaddr_in
//	func onConnect(p *OnConnect) { ... }
//
//	//fexit:tcp_v4_connect args=sk ret
//	func onConnectExit(p *OnConnectExit) { ... }
//
//	//fmod_ret:security_socket_connect args=address:sockaddr_in
//	func denyConnect(p *DenyConnect) { ... }
//
// A kernel module's function is MODULE:FUNC, as with libbpf and bpftrace:
//
//	//fentry:loop:loop_control_ioctl args=file,cmd,parm
//	func onControl(p *OnControl) { ... }
//
// A bare FUNC that vmlinux lacks is looked for in the modules' BTF too,
// and taken from the one module that has it (describe says which). The
// arguments, and the structs of the module's own (struct loop_device),
// are typed from the module's BTF, and resolved against the module's
// /sys/kernel/btf/MODULE where the program loads: the module must be
// loaded there (or built in, when vmlinux then has the function).
//
// args= names the arguments to expose (all when absent, none for "args=");
// NAME:STRUCT views a pointer argument as another struct (reads then use
// bpf_probe_read_kernel); ret exposes the return value (fexit) or the
// previous result (fmod_ret); task exposes the current task_struct; depth=N
// gives every struct within N pointer hops accessors for all its members
// (for completion in an editor; otherwise accessors exist for exactly what
// the stubs read, at any depth); sleepable builds the ".s" form. gofmt
// rewrites //fmod_ret: and //tp_btf: as // fmod_ret: and // tp_btf:
// (underscores are not directive syntax); both forms are accepted. Comments that look like misspelled directives
// ("//fentri:", "// fentry:x") get a warning.
//
// An fsession probe is one stub that runs at the call and at the return,
// with a cookie per call that the entry part sets and the exit part reads:
//
//	//fsession:vfs_read args=count ret [cookie=u64]
//	func onRead(p *OnRead) {
//		p.FilterTgid(pid) // outside the parts: at both
//		p.AtEntry(func(e *OnReadEntry) { e.SetCookie(runtime.KtimeNs()) })
//		p.AtExit(func(x *OnReadExit) {
//			lat.Record(x, runtime.KtimeNs().SubV(x.Cookie)) // x.Ret, x.Count too
//		})
//	}
//
// Ret and Cookie are members of the exit part's type only and SetCookie of
// the entry part's, so the Go compiler refuses them in the wrong part.
// cookie= picks its type (u8 to u64, s8 to s64; u64 by default); a call
// whose entry part set none reads 0. Where the kernel has fsession
// (BPF_TRACE_FSESSION, Linux 7.0) the stub is one program and one link;
// elsewhere Load builds an fentry and an fexit program from the same stub,
// the cookie kept in a hash map keyed by pid_tgid. Load chooses by a probe
// of the running kernel; Objects.Mechanism says which it got. The results
// are the same but for calls that nest in one thread (recursion), where
// the pair keeps the innermost call's cookie.
//
// An fentry or fexit probe can name several functions, or glob patterns:
//
//	//fentry:vfs_read,vfs_write,vfs_open args=
//	//fexit:vfs_fsync* args=file ret
//	func onVfs(p *OnVfs) { calls.Add(p, p.FuncIndex(), runtime.Uint64(1)) }
//
// One stub stands for all of them. p.FuncIndex() is the running
// function's position in the list Load attached to (Objects.TargetsOf),
// p.FuncIP() its address (Objects.TargetOf names it). Arguments and ret
// are typed only when every function has them by the same name and type
// in the same slot; otherwise generation says which function differs.
// Names and patterns are resolved again on the kernel the probe loads on;
// what is missing or cannot be traced there is left out (Objects.Notes).
// Where the kernel has tracing multi-links (BPF_TRACE_FENTRY_MULTI and
// BPF_TRACE_FEXIT_MULTI, Linux 7) it is one program attached to every
// function at once by one link; elsewhere, one program and trampoline link
// per function (Options.PerFunction forces it). Objects.Mechanism says
// which; check and describe say which each kernel gets.
//
// Event types are plain structs of sized integers and byte arrays:
//
//	//fentrygen:event [size=BYTES]
//	type ConnectEvent struct { ... }
//
// For each, the generated file has a view, ConnectEventView: NewConnectEventView
// starts one in a stub, with a typed getter, setter and (4- and 8-byte
// fields) atomic adder per field, and Output. Objects.ConnectEventReader
// reads them in Go. The BPF side writes at the Go struct's own offsets, so
// both sides agree by construction.
//
// Maps are package variables of the runtime's map types (Hash, LRUHash,
// PerCPUHash, Array, PerCPUArray, Global, Log2Hist, LinearHist, Log2HistBy,
// LinearHistBy, StackTrace), shaped by an optional annotation:
//
//	//fentrygen:map [max=N] [slots=N] [base=N] [step=N]
//	var start runtime.Hash[runtime.U32, runtime.U64]
//
// Struct keys and values are views: runtime.Hash[runtime.U64, DataView]
// for a struct Data of the package. Objects has a typed handle per map.
//
// # Output
//
// One file per package, fentrygen_gen.go (-o), gofmt'd and deterministic,
// starting "// Code generated by fentrygen. DO NOT EDIT." and carrying the
// build constraint of the probes' files. The package is type-checked with
// it before it is written: a file that does not compile is never written.
// It is written atomically, left alone when unchanged, and never written
// over a file whose first line is not that header. Nothing is written when
// any package has errors; every error is printed as file:line:col: message.
// Exit status: 0 done, 1 errors, 2 usage.
//
// Only the package's own files are type-checked; what they import is read
// from the go command's export data. Its listing (go list -deps -export) is
// cached in $FENTRYGEN_CACHE/exports (default ~/.cache/fentrygen/exports)
// with a stamp of every file it depends on outside the module cache and
// GOROOT (the imported packages' folders in the main module, workspace or
// replacements; go.mod, go.sum, go.work) and keyed by the go command's
// settings, build tags and environment, so a run with nothing changed does
// not ask the go command again. FENTRYGEN_NOCACHE=1 turns it off.
//
// # Check
//
// fentrygen check resolves every probe of the packages — its function or
// tracepoint, the arguments and the return value it reads, every member it
// follows, fmod_ret eligibility, the slots x86-64 takes before 6.6 — against
// each kernel's BTF: the running kernel's, the package's pinned snapshot,
// each -btf file, and with -kernels test the test kernels' (Debian's 6.1,
// 6.12 and 7.x, unpacked offline). It loads and boots nothing, prints a probe by
// kernel table (ok, ok* with notes, FAIL) with what is missing or changed
// and near misses, and exits 1 when any cell fails; -json for CI. Where
// a probe loads differently by kernel the cell says how: "ok fsession"
// (native) or "ok pair" (an fentry+fexit pair), "ok multi" (one tracing
// multi-link) or "ok per-function", with why below the table. fentrygen
// describe says the same of one function, for its BTF and with -kernels
// test for each test kernel. A probe on a module's function is checked in
// that module's BTF: the running kernel's /sys/kernel/btf/MODULE (FAIL,
// saying to load it, when the module is not loaded), the module files
// beside a -btf file named vmlinux, the test kernels' .ko files.
//
// # Other kernels
//
// fentrygen vm runs a statically linked program, typically a test binary,
// in each of Debian's cloud kernels 6.1, 6.12 and the newest 7.x, booted
// one after the other under QEMU (TCG; qemu-system-x86 must be installed):
//
//	CGO_ENABLED=0 go test -exec 'go tool fentrygen vm' ./...
//	go test -exec 'go tool fentrygen vm -kernels 7.x' -run TestProbe ./probes
//
// Before each run a line names the kernel and its Debian package; the
// program's output (standard output and error together) follows as it
// comes, then its exit status, and a last line says on which kernels it
// passed or failed. The exit status is 0 only when the program exited 0 on
// every kernel. The guest's / is an initramfs holding the program and a
// copy of the working folder (a test's package folder, without hidden
// entries; not copied over 64 MiB), where the program starts; proc, sysfs,
// bpffs, debugfs, tracefs, devtmpfs and a tmpfs /tmp are mounted, lo is up,
// there is no other network, and the program runs as root. Files it writes
// stay in the guest: coverage and profiles are lost, and go test does not
// cache the results. A dynamically linked program is refused: the guest
// has no C library (go test links one into tests that use net or os/user
// when cgo is on, hence CGO_ENABLED=0). Each boot is limited to the test's
// -test.timeout plus a minute (else $FENTRYGEN_VM_TIMEOUT or 5m), or
// -timeout. Kernels are downloaded, never installed, into
// $FENTRYGEN_CACHE (else the user's cache folder, fentrygen/kernels); 7.x
// comes from Debian's trixie-backports and sid through a private apt
// configuration there, leaving the host's apt setup alone. -list prints the
// kernels without booting them. -modules loop,xfs loads those kernel
// modules in each guest before the program starts, taken from that
// kernel's own packages (linux-modules-VERSION for 7.x), decompressed, the
// modules they depend on first.
//
// # BTF
//
// From -btf, else the package's fentrygen.btf (see fentrygen snapshot),
// else /sys/kernel/btf/vmlinux, else the snapshot embedded in fentrygen. A
// BTF file must be a regular file of at most 64 MiB of well-formed BTF
// (types that contain themselves, names that are not C identifiers and
// dangling references are refused). BTF at generate time serves type
// checking and messages; member offsets, bitfields and argument slots are
// resolved where the program loads.
//
// A kernel module's BTF is split BTF: it continues the vmlinux BTF of the
// same kernel build. It comes from -btf-module NAME=FILE (FILE a copy of
// /sys/kernel/btf/NAME or the module's NAME.ko, decompressed; NAME
// defaults to FILE's name without .ko or .btf), from the files beside a
// vmlinux BTF file called vmlinux (so /sys/kernel/btf/vmlinux brings the
// loaded modules, and a copy of that folder its modules), and from a
// snapshot, which keeps the types of the modules its functions are in,
// each marked as the module's, in its one file:
//
//	fentrygen snapshot -btf /sys/kernel/btf/vmlinux -o fentrygen.btf loop:loop_control_ioctl loop_get_status
//
// generates probes on loop's functions where loop is not loaded.
package main
