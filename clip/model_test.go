package clip

import (
	"fmt"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/safetensors/safetensorstest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func readGolden(t testing.TB, path, name string) ([]float32, []int) {
	t.Helper()
	return safetensorstest.Float32(t, path, name)
}

// runAll returns hidden states, last, pooled and embeds for pixels.
func runAll(t testing.TB, m *Model, pixels *tensors.Tensor) [][]float32 {
	t.Helper()
	exec, err := model.NewExec(device.MustShared(), m.Store, func(_ *model.Scope, px *Node) []*Node {
		out := m.Forward(px, 0, true)
		return append(append([]*Node{}, out.Hidden...), out.Last, out.Pooled, out.Embeds)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(pixels)
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

func TestGoldenClipTiny(t *testing.T) {
	dir := assets.Require(t, assets.Golden("clip_tiny"))
	gpath := assets.Golden("clip_tiny", "golden.safetensors")
	m, err := Load(dir, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasProjection || m.Config.NumLayers != 4 || m.Config.HiddenAct != "quick_gelu" {
		t.Fatalf("unexpected model: %+v projection=%v", m.Config, m.HasProjection)
	}
	for _, v := range m.Variables() {
		if v.Trainable {
			t.Errorf("weight %s is trainable", v.Path())
		}
	}
	px, shape := readGolden(t, gpath, "pixel_values")
	outs := runAll(t, m, tensors.FromFlatDataAndDimensions(px, shape...))
	N := m.Config.NumLayers
	names := []string{}
	for i := 0; i <= N; i++ {
		names = append(names, fmt.Sprintf("hidden_%d", i))
	}
	names = append(names, "last_hidden_state", "pooler_output", "image_embeds")
	for i, name := range names {
		want, _ := readGolden(t, gpath, name)
		d := assets.MaxAbsDiff(outs[i], want)
		if d > 1e-4 {
			t.Errorf("%s differs from golden by %g (> 1e-4)", name, d)
		} else {
			t.Logf("%s: max |diff| = %.3g", name, d)
		}
	}
}
