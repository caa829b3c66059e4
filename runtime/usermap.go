package runtime

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/cilium/ebpf"
)

// Map is the user-space side of a loaded map from K to V, with K and V the
// Go types the kernel-side declaration's elements stand for (uint32 for
// U32, X for XView). Per-CPU maps sum each value's integers over CPUs in
// Lookup and Entries; LookupPerCPU lists them.
type Map[K comparable, V any] struct {
	m *ebpf.Map
}

// OpenMap is the typed handle on objs' map called name.
func OpenMap[K comparable, V any](objs *Objects, name string) (*Map[K, V], error) {
	m, err := objs.Map(name)
	if err != nil {
		return nil, err
	}
	var k K
	var v V
	for _, t := range []reflect.Type{reflect.TypeOf(k), reflect.TypeOf(v)} {
		if !plain(t) {
			return nil, fmt.Errorf("map %s: %v is not plain data", name, t)
		}
	}
	if ks, vs := reflect.TypeOf(k).Size(), reflect.TypeOf(v).Size(); uint32(ks) != m.KeySize() || uint32(vs) != m.ValueSize() {
		return nil, fmt.Errorf("map %s holds %d-byte keys and %d-byte values, not %T (%d) and %T (%d)", name, m.KeySize(), m.ValueSize(), k, ks, v, vs)
	}
	return &Map[K, V]{m: m}, nil
}

// Ebpf is the underlying map.
func (m *Map[K, V]) Ebpf() *ebpf.Map { return m.m }

func (m *Map[K, V]) perCPU() bool {
	t := m.m.Type()
	return t == ebpf.PerCPUHash || t == ebpf.PerCPUArray || t == ebpf.LRUCPUHash
}

// Lookup returns the value under k; ok is false when there is none.
func (m *Map[K, V]) Lookup(k K) (v V, ok bool, err error) {
	if m.perCPU() {
		per, ok, err := m.LookupPerCPU(k)
		if !ok || err != nil {
			return v, ok, err
		}
		return sumValues(per), true, nil
	}
	err = m.m.Lookup(k, &v)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return v, false, nil
	}
	return v, err == nil, err
}

// LookupPerCPU returns a per-CPU map's values under k, one per possible
// CPU.
func (m *Map[K, V]) LookupPerCPU(k K) ([]V, bool, error) {
	var per []V
	err := m.m.Lookup(k, &per)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, false, nil
	}
	return per, err == nil, err
}

// Update stores v under k (every CPU's copy, for per-CPU maps).
func (m *Map[K, V]) Update(k K, v V) error {
	if m.perCPU() {
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return err
		}
		per := make([]V, n)
		for i := range per {
			per[i] = v
		}
		return m.m.Update(k, per, ebpf.UpdateAny)
	}
	return m.m.Update(k, v, ebpf.UpdateAny)
}

// Delete removes k; a missing key is not an error.
func (m *Map[K, V]) Delete(k K) error {
	err := m.m.Delete(k)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Entries returns every key and value (per-CPU values summed).
func (m *Map[K, V]) Entries() (map[K]V, error) {
	out := map[K]V{}
	var k K
	it := m.m.Iterate()
	if m.perCPU() {
		var per []V
		for it.Next(&k, &per) {
			out[k] = sumValues(per)
		}
	} else {
		var v V
		for it.Next(&k, &v) {
			out[k] = v
		}
	}
	return out, it.Err()
}

// Clear deletes every key of a hash map, or zeroes every element of an
// array.
func (m *Map[K, V]) Clear() error {
	switch m.m.Type() {
	case ebpf.Array, ebpf.PerCPUArray:
		var zero V
		for i := uint32(0); i < m.m.MaxEntries(); i++ {
			k, ok := any(i).(K)
			if !ok {
				return fmt.Errorf("array %s indexed by %T, not uint32", m.m, k)
			}
			if err := m.Update(k, zero); err != nil {
				return err
			}
		}
		return nil
	}
	var keys []K
	var next K
	err := m.m.NextKey(nil, &next)
	for err == nil {
		keys = append(keys, next)
		err = m.m.NextKey(next, &next)
	}
	if !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// sumValues adds up values field by field: integers, and arrays and
// structs of them.
func sumValues[V any](per []V) V {
	var sum V
	dst := reflect.ValueOf(&sum).Elem()
	for i := range per {
		addValue(dst, reflect.ValueOf(per[i]))
	}
	return sum
}

func addValue(dst, src reflect.Value) {
	switch dst.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		dst.SetInt(dst.Int() + src.Int())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		dst.SetUint(dst.Uint() + src.Uint())
	case reflect.Array:
		for i := range dst.Len() {
			addValue(dst.Index(i), src.Index(i))
		}
	case reflect.Struct:
		for i := range dst.NumField() {
			if dst.Field(i).CanSet() {
				addValue(dst.Field(i), src.Field(i))
			}
		}
	}
}
