// Package gen turns annotated Go stubs into typed fentry, fexit and fmod_ret
// probes: [Load] reads the package with golang.org/x/tools/go/packages,
// [Build] resolves every annotation against BTF into a printable [Model],
// and [Emit] renders the model as one gofmt'd Go file with jennifer.
//
// gen reads and writes no files itself and never exits: the CLI in
// cmd/fentrygen decides where BTF comes from and where output goes.
//
// Annotations sit in a function's doc comment:
//
//	//fentry:FUNC [args=a,b:cast_to,...] [ret] [depth=N] [sleepable]
//	//fexit:FUNC ...
//	//fmod_ret:FUNC ...
//
// and event types carry
//
//	//fentrygen:event [size=BYTES]
package gen
