package llama

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
)

// Random weights depend only on the seed, and the bf16/f16 models hold the rounded float32 values (the workers fill
// tensors in the model's dtype directly).
func TestRandomModelDTypes(t *testing.T) {
	cfg := Presets["tiny"]
	values := func(dt dtypes.DType, seed uint64) map[string][]float32 {
		m, err := RandomModel(cfg, dt, seed)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]float32{}
		for v := range m.Store.IterVariables() {
			val := v.MustValue()
			switch dt {
			case dtypes.Float32:
				out[v.Path()] = tensors.MustCopyFlatData[float32](val)
			case dtypes.BFloat16:
				for _, x := range tensors.MustCopyFlatData[bfloat16.BFloat16](val) {
					out[v.Path()] = append(out[v.Path()], x.Float32())
				}
			case dtypes.Float16:
				for _, x := range tensors.MustCopyFlatData[float16.Float16](val) {
					out[v.Path()] = append(out[v.Path()], x.Float32())
				}
			}
		}
		return out
	}
	f32 := values(dtypes.Float32, 3)
	if len(f32) != len(cfg.canonicalNames()) {
		t.Fatalf("%d variables, want %d", len(f32), len(cfg.canonicalNames()))
	}
	again, other := values(dtypes.Float32, 3), values(dtypes.Float32, 4)
	for _, dt := range []dtypes.DType{dtypes.BFloat16, dtypes.Float16} {
		low := values(dt, 3)
		for path, want := range f32 {
			got := low[path]
			for i, w := range want {
				r := bfloat16.FromFloat32(w).Float32()
				if dt == dtypes.Float16 {
					r = float16.FromFloat32(w).Float32()
				}
				if got[i] != r || again[path][i] != w {
					t.Fatalf("%s %s[%d]: %v, want %v rounded from %v (rerun %v)", dt, path, i, got[i], r, w, again[path][i])
				}
			}
		}
	}
	same := 0
	for path, w := range f32 {
		if len(w) > 64 && w[0] == other[path][0] {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("seeds 3 and 4 gave %d identical weight matrices", same)
	}
}
