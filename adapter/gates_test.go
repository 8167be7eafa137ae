package adapter

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
)

// TestReadGates reads a saved random-init adapter's gates back as tanh(gate) per adapted layer and head.
func TestReadGates(t *testing.T) {
	m := loadTiny(t)
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 5}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "adapter.safetensors")
	if err := a.Save(path, nil); err != nil {
		t.Fatal(err)
	}
	g, err := ReadGates(path)
	if err != nil {
		t.Fatal(err)
	}
	// Variables() is in file order: prompts, gates.
	raw := tensors.MustCopyFlatData[float32](a.Variables()[1].MustValue())
	if len(raw) != 2*m.Config.NumHeads {
		t.Fatalf("gate variable not found (%d values)", len(raw))
	}
	if g.Mode != GateHeadTanh || g.Init != InitRandom || len(g.Values) != 2 || g.Layers[0] != m.Config.NumLayers-2 || g.Layers[1] != m.Config.NumLayers-1 {
		t.Fatalf("gates %+v", g)
	}
	nonzero := false
	for i, row := range g.Values {
		for h, v := range row {
			want := math.Tanh(float64(raw[i*m.Config.NumHeads+h]))
			if math.Abs(v-want) > 1e-7 {
				t.Errorf("layer %d head %d: %g, want tanh(%g) = %g", g.Layers[i], h, v, raw[i*m.Config.NumHeads+h], want)
			}
			nonzero = nonzero || v != 0
		}
	}
	if !nonzero {
		t.Error("random-init gates all 0")
	}
}
