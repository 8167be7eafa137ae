// Package safetensorstest reads single tensors of golden safetensors files in tests, failing the test on any
// error, so that each package's tests do not open, read and close a file by hand.
package safetensorstest

import (
	"testing"

	"github.com/adapterlab/llama-adapter/models/safetensors"
)

// Float32 returns tensor name of the safetensors file at path (any float dtype, widened) and its shape.
func Float32(t testing.TB, path, name string) ([]float32, []int) {
	t.Helper()
	return read(t, path, name, (*safetensors.File).ReadFloat32)
}

// Int64 returns integer tensor name of the safetensors file at path and its shape.
func Int64(t testing.TB, path, name string) ([]int64, []int) {
	t.Helper()
	return read(t, path, name, (*safetensors.File).ReadInt64)
}

func read[T any](t testing.TB, path, name string, get func(*safetensors.File, string) ([]T, []int, error)) ([]T, []int) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, shape, err := get(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return v, shape
}
