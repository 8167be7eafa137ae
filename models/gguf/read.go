package gguf

import (
	"fmt"
)

// ReadRaw reads a tensor's bytes as stored, into buf when it is large enough (pass nil to allocate).
func (f *File) ReadRaw(name string, buf []byte) ([]byte, TensorInfo, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, TensorInfo{}, fmt.Errorf("gguf %s: no tensor %q", f.Path, name)
	}
	raw, err := f.readBytes(t, 0, t.Bytes, buf)
	return raw, t, err
}

func (f *File) readBytes(t TensorInfo, from, n uint64, buf []byte) ([]byte, error) {
	if f.r == nil {
		return nil, fmt.Errorf("gguf %s: file is closed", f.Path)
	}
	if uint64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	off := f.DataOffset + int64(t.Offset+from)
	if k, err := f.r.ReadAt(buf, off); k < len(buf) {
		return nil, fmt.Errorf("gguf %s: tensor %q: reading %d bytes at %d: %w", f.Path, t.Name, n, off, err)
	}
	return buf, nil
}

// ReadFloat32 reads a tensor and dequantises it to float32, in row-major order (TensorInfo.Shape).
func (f *File) ReadFloat32(name string) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", f.Path, name)
	}
	if len(t.Dims) == 0 {
		return nil, fmt.Errorf("gguf %s: tensor %q has no dimensions", f.Path, name)
	}
	return f.ReadRows(name, 0, int(t.Elems/t.Dims[0]))
}

// ReadRows dequantises rows [from, to) of a tensor, a row being Dims[0] contiguous values (for a matrix with
// Dims [ne0, ne1]: rows of the row-major [ne1, ne0] array). Only those rows' bytes are read.
func (f *File) ReadRows(name string, from, to int) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", f.Path, name)
	}
	if !t.Type.CanDequantize() {
		return nil, fmt.Errorf("gguf %s: tensor %q: dequantising %s is not supported", f.Path, name, t.Type)
	}
	rows := t.Elems / t.Dims[0]
	if from < 0 || to < from || uint64(to) > rows {
		return nil, fmt.Errorf("gguf %s: tensor %q: rows [%d, %d) out of range (it has %d)", f.Path, name, from, to, rows)
	}
	be, bb := t.Type.BlockSize()
	rowBytes := t.Dims[0] / uint64(be) * uint64(bb)
	raw, err := f.readBytes(t, uint64(from)*rowBytes, uint64(to-from)*rowBytes, nil)
	if err != nil {
		return nil, err
	}
	out := make([]float32, uint64(to-from)*t.Dims[0])
	if err := Dequantize(out, raw, t.Type); err != nil {
		return nil, fmt.Errorf("gguf %s: tensor %q: %w", f.Path, name, err)
	}
	return out, nil
}
