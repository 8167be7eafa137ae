package llama

import (
	"fmt"
	"math"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/backend"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// golden reads a float32 tensor from a golden safetensors file.
func golden(t *testing.T, path, name string) ([]float32, []int) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, shape, err := f.ReadFloat32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, shape
}

func goldenIDs(t *testing.T, path string) [][]int32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, shape, err := f.ReadInt64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]int32, shape[0])
	for b := range out {
		for s := 0; s < shape[1]; s++ {
			out[b] = append(out[b], int32(ids[b*shape[1]+s]))
		}
	}
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

// runHidden returns logits and hidden states for token ids.
func runHidden(t *testing.T, m *Model, ids [][]int32) ([]float32, [][]float32) {
	t.Helper()
	exec, err := model.NewExec(backend.MustShared(), m.Store, func(scope *model.Scope, tokens *Node) []*Node {
		out := m.Forward(tokens.Graph(), Inputs{Tokens: tokens, Hidden: true})
		return append([]*Node{out.Logits}, out.Hidden...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromValue(ids))
	if err != nil {
		t.Fatal(err)
	}
	var hidden [][]float32
	for _, h := range outs[1:] {
		h32 := h
		if h.DType() != dtypes.Float32 {
			h32 = convertToF32(t, h)
		}
		hidden = append(hidden, tensors.MustCopyFlatData[float32](h32))
	}
	return tensors.MustCopyFlatData[float32](outs[0]), hidden
}

func convertToF32(t *testing.T, x *tensors.Tensor) *tensors.Tensor {
	return MustExecOnce(backend.MustShared(), func(x *Node) *Node { return ConvertDType(x, dtypes.Float32) }, x)
}

func TestGoldenLlamaTinyF32(t *testing.T) {
	dir := assets.Require(t, assets.Golden("llama_tiny"))
	m, err := Load(dir, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	gpath := assets.Golden("llama_tiny", "golden.safetensors")
	ids := goldenIDs(t, gpath)
	logits, hidden := runHidden(t, m, ids)
	want, _ := golden(t, gpath, "logits")
	if d := maxAbsDiff(logits, want); d > 1e-4 {
		t.Errorf("logits differ from golden by %g (> 1e-4)", d)
	} else {
		t.Logf("logits max |diff| = %.3g", d)
	}
	if len(hidden) != m.Config.NumLayers+1 {
		t.Fatalf("got %d hidden states", len(hidden))
	}
	for i, h := range hidden {
		w, _ := golden(t, gpath, fmt.Sprintf("hidden_%d", i))
		if d := maxAbsDiff(h, w); d > 1e-4 {
			t.Errorf("hidden_%d differs from golden by %g (> 1e-4)", i, d)
		}
	}
}
