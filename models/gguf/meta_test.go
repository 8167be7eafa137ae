package gguf

import (
	"math"
	"testing"
)

// TestAsInt64 converts every integer type the parser yields and refuses the rest (floats, bools, strings, and
// a uint64 that does not fit).
func TestAsInt64(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int64
		ok   bool
	}{
		{uint8(200), 200, true}, {int8(-3), -3, true}, {uint16(60000), 60000, true}, {int16(-300), -300, true},
		{uint32(4e9), 4e9, true}, {int32(-7), -7, true}, {int64(-1 << 40), -1 << 40, true},
		{uint64(math.MaxInt64), math.MaxInt64, true}, {uint64(math.MaxInt64) + 1, 0, false},
		{float32(1), 0, false}, {true, 0, false}, {"1", 0, false}, {nil, 0, false},
	} {
		if got, ok := asInt64(c.v); got != c.want || ok != c.ok {
			t.Errorf("asInt64(%T %v) = %d, %v; want %d, %v", c.v, c.v, got, ok, c.want, c.ok)
		}
	}
}
