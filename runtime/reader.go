package runtime

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Reader reads the records of type T that programs sent to one ring
// buffer, and tells how many arrived and how many the ring buffer had no
// room for.
type Reader[T any] struct {
	rd        *ringbuf.Reader
	lost      *ebpf.Map
	delivered atomic.Uint64
}

// OpenReader opens a reader on objs' ring buffer called name; objs.Close
// closes it too.
func OpenReader[T any](objs *Objects, name string) (*Reader[T], error) {
	m, err := objs.Map(name)
	if err != nil {
		return nil, err
	}
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, fmt.Errorf("ring buffer %s: %w", name, err)
	}
	r := &Reader[T]{rd: rd, lost: objs.Maps[lostName(name)]}
	objs.track(r)
	return r, nil
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
	v, err := Decode[T](rec.RawSample)
	if err == nil {
		r.delivered.Add(1)
	}
	return v, err
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

// pollEvery is how often Records looks at its context while no record
// arrives.
const pollEvery = 100 * time.Millisecond

// Records yields the records as they arrive until ctx is done, then those
// already sent, then stops: nothing the programs sent before ctx ended is
// dropped. A read error is yielded once and ends the sequence.
func (r *Reader[T]) Records(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			done := ctx.Err() != nil
			wait := pollEvery
			if done {
				wait = 0
			}
			v, err := r.ReadTimeout(wait)
			if errors.Is(err, ErrTimeout) {
				if done {
					return
				}
				continue
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// Delivered is how many records Read has returned.
func (r *Reader[T]) Delivered() uint64 { return r.delivered.Load() }

// Lost is how many records programs could not send because the ring buffer
// was full, summed over CPUs.
func (r *Reader[T]) Lost() (uint64, error) {
	if r.lost == nil {
		return 0, errors.New("this ring buffer has no lost-records counter")
	}
	return sumPerCPU(r.lost, uint32(0))
}

// Close stops the reader; a blocked Read returns.
func (r *Reader[T]) Close() error { return r.rd.Close() }

// sumPerCPU sums a per-CPU u64 counter.
func sumPerCPU(m *ebpf.Map, key uint32) (uint64, error) {
	var per []uint64
	if err := m.Lookup(key, &per); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}
