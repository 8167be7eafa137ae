package gguf

import (
	"errors"
	"fmt"
	"math"
	"reflect"
)

// ValueType is the type tag of a GGUF metadata value.
type ValueType uint32

// Metadata value types, numbered as in the GGUF specification.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string",
	"array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// ErrNotFound is returned (wrapped) by the Metadata getters when the key is absent; test with errors.Is.
var ErrNotFound = errors.New("gguf: metadata key not found")

// Array is a metadata array value. Values holds a typed Go slice: []uint8, []int8, []uint16, []int16, []uint32,
// []int32, []float32, []bool, []string, []uint64, []int64, []float64, or []Array for nested arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// Len is the number of elements.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// Metadata is the key/value section of a GGUF file, in file order. Scalars are stored as their Go types (uint8 ...
// float64, bool, string); arrays as Array.
type Metadata struct {
	source string // file name, for error messages
	keys   []string
	values map[string]any
	types  map[string]ValueType
}

func newMetadata(source string) *Metadata {
	return &Metadata{source: source, values: map[string]any{}, types: map[string]ValueType{}}
}

func (m *Metadata) set(key string, t ValueType, v any) {
	if _, dup := m.values[key]; !dup {
		m.keys = append(m.keys, key)
	}
	m.values[key] = v
	m.types[key] = t
}

// Keys lists the keys in file order.
func (m *Metadata) Keys() []string { return append([]string(nil), m.keys...) }

// Has reports whether key is present.
func (m *Metadata) Has(key string) bool { _, ok := m.values[key]; return ok }

// Type returns the value type of key (ValueArray for arrays; see Array.Elem for the element type).
func (m *Metadata) Type(key string) (ValueType, bool) { t, ok := m.types[key]; return t, ok }

// Value returns the raw value of key: a Go scalar or an Array.
func (m *Metadata) Value(key string) (any, bool) { v, ok := m.values[key]; return v, ok }

func (m *Metadata) get(key string) (any, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, fmt.Errorf("gguf %s: %q: %w", m.source, key, ErrNotFound)
	}
	return v, nil
}

func (m *Metadata) wrongType(key, want string) error {
	return fmt.Errorf("gguf %s: metadata %q is %s, want %s", m.source, key, m.describe(key), want)
}

func (m *Metadata) describe(key string) string {
	if a, ok := m.values[key].(Array); ok {
		return fmt.Sprintf("array of %s", a.Elem)
	}
	return m.types[key].String()
}

// String returns a string value.
func (m *Metadata) String(key string) (string, error) {
	v, err := m.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", m.wrongType(key, "string")
	}
	return s, nil
}

// Bool returns a bool value.
func (m *Metadata) Bool(key string) (bool, error) {
	v, err := m.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, m.wrongType(key, "bool")
	}
	return b, nil
}

// asInt64 converts any integer scalar; ok is false for other types or a uint64 above MaxInt64.
func asInt64(v any) (int64, bool) {
	switch r := reflect.ValueOf(v); {
	case r.CanInt():
		return r.Int(), true
	case r.CanUint() && r.Uint() <= math.MaxInt64:
		return int64(r.Uint()), true
	}
	return 0, false
}

// Int returns an integer value of any integer type as int64.
func (m *Metadata) Int(key string) (int64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.(uint64); ok && u > math.MaxInt64 {
		return 0, fmt.Errorf("gguf %s: metadata %q = %d overflows int64", m.source, key, u)
	}
	i, ok := asInt64(v)
	if !ok {
		return 0, m.wrongType(key, "an integer")
	}
	return i, nil
}

// Uint returns a non-negative integer value of any integer type as uint64.
func (m *Metadata) Uint(key string) (uint64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.(uint64); ok {
		return u, nil
	}
	i, ok := asInt64(v)
	if !ok {
		return 0, m.wrongType(key, "an integer")
	}
	if i < 0 {
		return 0, fmt.Errorf("gguf %s: metadata %q = %d is negative", m.source, key, i)
	}
	return uint64(i), nil
}

// Float returns a float32 or float64 value (integers are accepted too) as float64.
func (m *Metadata) Float(key string) (float64, error) {
	v, err := m.get(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	if i, ok := asInt64(v); ok {
		return float64(i), nil
	}
	return 0, m.wrongType(key, "a number")
}

// Array returns an array value.
func (m *Metadata) Array(key string) (Array, error) {
	v, err := m.get(key)
	if err != nil {
		return Array{}, err
	}
	a, ok := v.(Array)
	if !ok {
		return Array{}, m.wrongType(key, "array")
	}
	return a, nil
}

// Strings returns an array of strings.
func (m *Metadata) Strings(key string) ([]string, error) {
	a, err := m.Array(key)
	if err != nil {
		return nil, err
	}
	s, ok := a.Values.([]string)
	if !ok {
		return nil, m.wrongType(key, "array of string")
	}
	return s, nil
}

// Int32s returns an integer array (of any integer element type whose values fit) as []int32.
func (m *Metadata) Int32s(key string) ([]int32, error) {
	return numbers(m, key, "array of integers that fit int32", func(v any) (int32, bool) {
		i, ok := asInt64(v)
		return int32(i), ok && i >= math.MinInt32 && i <= math.MaxInt32
	})
}

// Float32s returns a float32 array (float64 and integer arrays are converted).
func (m *Metadata) Float32s(key string) ([]float32, error) {
	return numbers(m, key, "array of numbers", func(v any) (float32, bool) {
		if x, ok := v.(float64); ok {
			return float32(x), true
		}
		i, ok := asInt64(v)
		return float32(i), ok
	})
}

// numbers returns array key as []T: as stored when it already is one, else each element through conv, which
// says whether it accepts the element (what names the accepted type in the error).
func numbers[T any](m *Metadata, key, what string, conv func(any) (T, bool)) ([]T, error) {
	a, err := m.Array(key)
	if err != nil {
		return nil, err
	}
	if s, ok := a.Values.([]T); ok {
		return s, nil
	}
	if a.Values == nil {
		return []T{}, nil
	}
	rv := reflect.ValueOf(a.Values)
	if rv.Kind() != reflect.Slice {
		return nil, m.wrongType(key, what)
	}
	out := make([]T, rv.Len())
	for i := range out {
		x, ok := conv(rv.Index(i).Interface())
		if !ok {
			return nil, m.wrongType(key, what)
		}
		out[i] = x
	}
	return out, nil
}
