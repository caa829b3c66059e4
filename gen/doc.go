// Package gen turns annotated Go stubs into typed fentry, fexit and fmod_ret
// probes. [Load] parses a package's own files and type-checks them against
// the export data of their imports (the generated file left out); [Build]
// works in stages — scan the files for annotations, resolve probes, views
// and maps against BTF, decide and check every generated name, then settle
// the accessors on what the stubs use by type-checking the package with
// generated code — into a printable [Model] that compiles with the package;
// [Emit] renders the model as one gofmt'd Go file with jennifer.
//
// gen reads and writes no files itself and never exits: the CLI in
// cmd/fentrygen decides where BTF comes from and where output goes.
//
// Annotations sit in a function's doc comment:
//
//	//fentry:FUNC [args=a,b:cast_to,...] [ret] [task] [depth=N] [sleepable]
//	//fexit:FUNC ...
//	//fmod_ret:FUNC ...
//
// event types carry
//
//	//fentrygen:event [size=BYTES]
//
// and map variables, optionally,
//
//	//fentrygen:map [max=N] [slots=N] [base=N] [step=N]
package gen
