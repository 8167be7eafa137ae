package safetensors

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestTensorFromRaw: equal dtypes copy the bytes bit for bit; other pairs go through float32 and round to
// nearest even; a wrong byte count is an error.
func TestTensorFromRaw(t *testing.T) {
	vals := []float32{0, 1, -2.5, 3.14159, 1e-3, -65504}
	for _, disk := range []string{F32, F16, BF16, F64} {
		raw := make([]byte, ElemSize(disk)*len(vals))
		if disk == F64 { // EncodeFloat32 writes no F64
			for i, v := range vals {
				binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(float64(v)))
			}
		} else {
			EncodeFloat32(raw, vals, disk)
		}
		decoded := make([]float32, len(vals))
		if err := DecodeFloat32(decoded, raw, disk); err != nil {
			t.Fatal(err)
		}
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16, dtypes.Float16} {
			tt, err := TensorFromRaw(dt, []int{2, 3}, raw, disk)
			if err != nil {
				t.Fatalf("%s → %s: %v", disk, dt, err)
			}
			if disk == StoredDType(dt) {
				tt.ConstBytes(func(b []byte) {
					if string(b) != string(raw) {
						t.Errorf("%s → %s: bytes not copied as they are", disk, dt)
					}
				})
			}
			got := toFloat32(t, tt)
			for i, v := range decoded {
				want := v
				switch dt {
				case dtypes.BFloat16:
					want = bfloat16.FromFloat32(v).Float32()
				case dtypes.Float16:
					want = float16.FromFloat32(v).Float32()
				}
				if got[i] != want {
					t.Errorf("%s → %s [%d] = %v, want %v", disk, dt, i, got[i], want)
				}
			}
		}
	}
	if _, err := TensorFromRaw(dtypes.Float32, []int{2, 3}, make([]byte, 20), F32); err == nil {
		t.Error("20 bytes for 6 float32 values accepted")
	}
	if _, err := TensorFromFloat32(dtypes.BFloat16, []int{4}, vals); err == nil {
		t.Error("6 values for shape [4] accepted")
	}
}

func TestDecodeBFloat16(t *testing.T) {
	vals := []float32{1, -2.5, 3.14159, 1e-3}
	for _, disk := range []string{F32, F16, BF16} {
		raw := make([]byte, ElemSize(disk)*len(vals))
		EncodeFloat32(raw, vals, disk)
		f32 := make([]float32, len(vals))
		if err := DecodeFloat32(f32, raw, disk); err != nil {
			t.Fatal(err)
		}
		got := make([]bfloat16.BFloat16, len(vals))
		if err := DecodeBFloat16(got, raw, disk); err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			if want := bfloat16.FromFloat32(f32[i]); got[i] != want {
				t.Errorf("%s[%d] = %v, want %v", disk, i, got[i], want)
			}
		}
	}
	if err := DecodeBFloat16(make([]bfloat16.BFloat16, 3), make([]byte, 4), BF16); err == nil {
		t.Error("4 bytes for 3 bfloat16 values accepted")
	}
}

func toFloat32(t *testing.T, tt *tensors.Tensor) []float32 {
	t.Helper()
	var out []float32
	var err error
	switch tt.DType() {
	case dtypes.Float32:
		err = tensors.ConstFlatData(tt, func(f []float32) { out = append(out, f...) })
	case dtypes.BFloat16:
		err = tensors.ConstFlatData(tt, func(f []bfloat16.BFloat16) {
			for _, v := range f {
				out = append(out, v.Float32())
			}
		})
	case dtypes.Float16:
		err = tensors.ConstFlatData(tt, func(f []float16.Float16) {
			for _, v := range f {
				out = append(out, v.Float32())
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}
