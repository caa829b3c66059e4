package btf

import (
	"errors"
	"fmt"
	"strings"

	cbtf "github.com/cilium/ebpf/btf"
)

// tracepointPrefix names the typedef that gives a BTF-typed raw
// tracepoint its prototype: btf_trace_NAME is
// `void (*)(void *__data, TP_PROTO...)`, what the kernel attaches by.
const tracepointPrefix = "btf_trace_"

// tracepointFuncPrefix names the function the kernel calls for the
// tracepoint, __bpf_trace_NAME, with the same prototype and the parameter
// names the typedef lacks.
const tracepointFuncPrefix = "__bpf_trace_"

// ResolveTracepoint looks up the tracepoint name (sched_process_exec) for
// tp_btf programs and lays out its arguments: the prototype of the typedef
// btf_trace_NAME without its first parameter, the tracepoint's own void
// *__data, which the ctx does not carry. The names come from
// __bpf_trace_NAME when BTF has it (arg0, arg1... otherwise). Errors wrap
// ErrNotFound (with near-miss names).
func ResolveTracepoint(spec *cbtf.Spec, name string) (*Func, error) {
	var td *cbtf.Typedef
	err := spec.TypeByName(tracepointPrefix+name, &td)
	if errors.Is(err, cbtf.ErrNotFound) {
		near := NearNames(spec, tracepointPrefix+name, 3, func(t cbtf.Type) bool {
			_, ok := t.(*cbtf.Typedef)
			return ok && strings.HasPrefix(t.TypeName(), tracepointPrefix)
		})
		for i := range near {
			near[i] = strings.TrimPrefix(near[i], tracepointPrefix)
		}
		if len(near) == 0 {
			return nil, fmt.Errorf("tracepoint %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("tracepoint %s: %w (did you mean %s?)", name, ErrNotFound, strings.Join(near, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("tracepoint %s: %w", name, err)
	}
	ptr, ok := td.Type.(*cbtf.Pointer)
	if !ok {
		return nil, fmt.Errorf("tracepoint %s: %s is not a function pointer", name, td.Name)
	}
	proto, ok := ptr.Target.(*cbtf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return nil, fmt.Errorf("tracepoint %s: %s is not a function pointer taking __data", name, td.Name)
	}
	params := append([]cbtf.FuncParam(nil), proto.Params[1:]...)
	var fn *cbtf.Func
	named := spec.TypeByName(tracepointFuncPrefix+name, &fn) == nil
	if named {
		if p, ok := fn.Type.(*cbtf.FuncProto); !ok || len(p.Params) != len(proto.Params) {
			named = false
		} else {
			for i := range params {
				params[i].Name = p.Params[i+1].Name
			}
		}
	}
	for i := range params {
		if !named || params[i].Name == "" {
			params[i].Name = fmt.Sprintf("arg%d", i)
		}
	}
	return layoutProto(&Func{Name: name}, params, proto.Return)
}
