package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// This file is the project's one raw-bytes ↔ dtype converter: the checkpoint readers (safetensors, torchpth,
// gguf's float tensors) and the model loaders (models/llama, clip) decode stored floats and build the model's
// tensors through it. The dtype vocabulary of stored bytes is safetensors' (F32, F16, BF16, F64).

// DecodeFloat32 converts little-endian raw bytes of a floating dtype into dst (len(dst) elements).
func DecodeFloat32(dst []float32, raw []byte, dtype string) error {
	if es := ElemSize(dtype); es == 0 || len(raw) != es*len(dst) {
		return fmt.Errorf("cannot decode %d bytes of %s into %d float32 values", len(raw), dtype, len(dst))
	}
	switch dtype {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = float16.FromBits(binary.LittleEndian.Uint16(raw[2*i:])).Float32()
		}
	case BF16:
		for i := range dst {
			dst[i] = bfloat16.FromBits(binary.LittleEndian.Uint16(raw[2*i:])).Float32()
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return fmt.Errorf("dtype %s is not floating point", dtype)
	}
	return nil
}

// EncodeFloat32 writes values into dst as little-endian dtype (F32, F16, BF16; round to nearest even).
func EncodeFloat32(dst []byte, values []float32, dtype string) {
	switch dtype {
	case F32:
		for i, v := range values {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range values {
			binary.LittleEndian.PutUint16(dst[2*i:], float16.FromFloat32(v).Bits())
		}
	case BF16:
		for i, v := range values {
			binary.LittleEndian.PutUint16(dst[2*i:], bfloat16.FromFloat32(v).Bits())
		}
	default:
		panic(fmt.Sprintf("safetensors.EncodeFloat32: unsupported dtype %q", dtype))
	}
}

// DecodeBFloat16 converts little-endian raw bytes of a floating dtype into dst (len(dst) elements): BF16 is
// copied bit for bit, F32 rounded to nearest even, F16 and F64 go through float32 first.
func DecodeBFloat16(dst []bfloat16.BFloat16, raw []byte, dtype string) error {
	if dtype != BF16 {
		vals := make([]float32, len(dst))
		if err := DecodeFloat32(vals, raw, dtype); err != nil {
			return err
		}
		for i, v := range vals {
			dst[i] = bfloat16.FromFloat32(v)
		}
		return nil
	}
	if len(raw) != 2*len(dst) {
		return fmt.Errorf("cannot decode %d bytes of %s into %d bfloat16 values", len(raw), dtype, len(dst))
	}
	for i := range dst {
		dst[i] = bfloat16.FromBits(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return nil
}

// StoredDType returns the dtype name under which a GoMLX dtype's values are stored (F32, BF16 or F16), or ""
// for the others.
func StoredDType(dtype dtypes.DType) string {
	switch dtype {
	case dtypes.Float32:
		return F32
	case dtypes.BFloat16:
		return BF16
	case dtypes.Float16:
		return F16
	}
	return ""
}

// TensorFromRaw makes a tensor of dtype (float32, bfloat16 or float16) and shape from raw little-endian bytes
// stored as diskDType. When the dtypes agree the bytes are copied as they are (bit-exact); otherwise the values
// go through float32 (DecodeFloat32, then rounding to nearest even).
func TensorFromRaw(dtype dtypes.DType, shape []int, raw []byte, diskDType string) (*tensors.Tensor, error) {
	n := numElements(shape)
	if es := ElemSize(diskDType); es == 0 || len(raw) != es*n {
		return nil, fmt.Errorf("cannot decode %d bytes of %s into shape %v", len(raw), diskDType, shape)
	}
	if diskDType == StoredDType(dtype) {
		t := tensors.FromShape(shapes.Make(dtype, shape...))
		if err := t.MutableBytes(func(data []byte) { copy(data, raw) }); err != nil {
			return nil, err
		}
		return t, nil
	}
	vals := make([]float32, n)
	if err := DecodeFloat32(vals, raw, diskDType); err != nil {
		return nil, err
	}
	return TensorFromFloat32(dtype, shape, vals)
}

// TensorFromFloat32 makes a tensor of dtype (float32, bfloat16 or float16) and shape holding vals in row-major
// order (len(vals) must be the shape's size), rounded to nearest even.
func TensorFromFloat32(dtype dtypes.DType, shape []int, vals []float32) (*tensors.Tensor, error) {
	if n := numElements(shape); len(vals) != n {
		return nil, fmt.Errorf("%d values for shape %v (%d elements)", len(vals), shape, n)
	}
	if dtype == dtypes.Float32 {
		t := tensors.FromShape(shapes.Make(dtype, shape...))
		if err := tensors.MutableFlatData(t, func(flat []float32) { copy(flat, vals) }); err != nil {
			return nil, err
		}
		return t, nil
	}
	j := 0
	return FillTensor(dtype, shape, func() float32 { j++; return vals[j-1] })
}

// numElements is the product of shape's dimensions.
func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// FillTensor makes a tensor of dtype (float32, bfloat16 or float16) and shape whose values, in row-major order,
// are next()'s, rounded to nearest even.
func FillTensor(dtype dtypes.DType, shape []int, next func() float32) (*tensors.Tensor, error) {
	t := tensors.FromShape(shapes.Make(dtype, shape...))
	var err error
	switch dtype {
	case dtypes.Float32:
		err = tensors.MutableFlatData(t, func(flat []float32) {
			for i := range flat {
				flat[i] = next()
			}
		})
	case dtypes.BFloat16:
		err = tensors.MutableFlatData(t, func(flat []bfloat16.BFloat16) {
			for i := range flat {
				flat[i] = bfloat16.FromFloat32(next())
			}
		})
	case dtypes.Float16:
		err = tensors.MutableFlatData(t, func(flat []float16.Float16) {
			for i := range flat {
				flat[i] = float16.FromFloat32(next())
			}
		})
	default:
		err = fmt.Errorf("unsupported dtype %s", dtype)
	}
	return t, err
}
