package runtime

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Value is anything a program can load into a register: a [Scalar] or one
// of the sized types below.
type Value interface {
	AsScalar() Scalar
}

// AsScalar returns s itself.
func (s Scalar) AsScalar() Scalar { return s }

// Sized integer values, named after their C type; generated code types
// arguments, return values and members with them.
type (
	U8  struct{ Scalar }
	U16 struct{ Scalar }
	U32 struct{ Scalar }
	U64 struct{ Scalar }
	S8  struct{ Scalar }
	S16 struct{ Scalar }
	S32 struct{ Scalar }
	S64 struct{ Scalar }
)

// Reader reads records of type T from a ring buffer.
type Reader[T any] struct {
	rd *ringbuf.Reader
}

// NewReader opens a reader on objs' ring buffer called name.
func NewReader[T any](objs *Objects, name string) (*Reader[T], error) {
	rd, err := objs.Ringbuf(name)
	if err != nil {
		return nil, err
	}
	return &Reader[T]{rd: rd}, nil
}

// ErrTimeout is returned by [Reader.ReadTimeout] when no record arrived.
var ErrTimeout = errors.New("no record before the deadline")

// Read blocks until a record arrives or the reader is closed.
func (r *Reader[T]) Read() (T, error) {
	rec, err := r.rd.Read()
	if err != nil {
		var zero T
		return zero, err
	}
	return Decode[T](rec.RawSample)
}

// ReadTimeout waits at most d for a record.
func (r *Reader[T]) ReadTimeout(d time.Duration) (T, error) {
	r.rd.SetDeadline(time.Now().Add(d))
	defer r.rd.SetDeadline(time.Time{})
	v, err := r.Read()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return v, fmt.Errorf("%w (%v)", ErrTimeout, d)
	}
	return v, err
}

// Close stops the reader; a blocked Read returns.
func (r *Reader[T]) Close() error { return r.rd.Close() }
