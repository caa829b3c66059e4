package runtime

import (
	"fmt"
	"unsafe"
)

// Decode copies a ring buffer record into a T. The BPF side wrote it at
// T's own offsets (unsafe.Offsetof), so the bytes are T's memory image; the
// record must be exactly unsafe.Sizeof(T) bytes.
func Decode[T any](raw []byte) (T, error) {
	var v T
	if uintptr(len(raw)) != unsafe.Sizeof(v) {
		return v, fmt.Errorf("record of %d bytes, want %d for %T", len(raw), unsafe.Sizeof(v), v)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), len(raw)), raw)
	return v, nil
}
