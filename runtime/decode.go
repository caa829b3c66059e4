package runtime

import (
	"fmt"
	"reflect"
	"unsafe"
)

// Decode copies a ring buffer record into a T. The BPF side wrote it at
// T's own offsets (unsafe.Offsetof), so the bytes are T's memory image; the
// record must be exactly unsafe.Sizeof(T) bytes.
func Decode[T any](raw []byte) (T, error) {
	var v T
	if t := reflect.TypeOf(v); t == nil || !plain(t) {
		return v, fmt.Errorf("%T is not plain data: records decode only into fixed-size integers, arrays and structs of them", v)
	}
	if uintptr(len(raw)) != unsafe.Sizeof(v) {
		return v, fmt.Errorf("record of %d bytes, want %d for %T", len(raw), unsafe.Sizeof(v), v)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), len(raw)), raw)
	return v, nil
}

// plain reports whether t holds no pointers, strings, slices, maps,
// channels, funcs or interfaces: bytes from the kernel can be its memory.
func plain(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return plain(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !plain(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}
