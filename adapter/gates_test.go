package adapter

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/gomlx/core/tensors"
)

// savedGates creates an adapter of cfg on m, saves it and reads its gates back with ReadGates.
func savedGates(t *testing.T, m *llama.Model, cfg Config) (*Adapter, *Gates) {
	t.Helper()
	a, err := New(m.Store, cfg, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "adapter.safetensors")
	if err := a.Save(path, nil); err != nil {
		t.Fatal(err)
	}
	g, err := ReadGates(path)
	if err != nil {
		t.Fatalf("gate %q: %v", cfg.Gate, err)
	}
	return a, g
}

// TestReadGates reads a saved random-init adapter's gates back as tanh(gate) per adapted layer and head.
func TestReadGates(t *testing.T) {
	m := loadTiny(t)
	a, g := savedGates(t, m, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 5})
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

// TestReadGatesRaw: per-head gates used as is (GateHead) come back raw, one per head; per-layer gates (GateLayer)
// raw, one per layer.
func TestReadGatesRaw(t *testing.T) {
	for _, mode := range []GateMode{GateHead, GateLayer} {
		m := loadTiny(t) // a fresh store: the gate variable's shape depends on the mode
		a, g := savedGates(t, m, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 5, Gate: mode})
		heads := 1
		if mode == GateHead {
			heads = m.Config.NumHeads
		}
		raw := tensors.MustCopyFlatData[float32](a.Variables()[1].MustValue())
		if g.Mode != mode || len(g.Values) != 2 || len(raw) != 2*heads {
			t.Fatalf("%s: gates %+v, %d raw values", mode, g, len(raw))
		}
		for i, row := range g.Values {
			if len(row) != heads {
				t.Fatalf("%s: layer %d has %d values, want %d", mode, i, len(row), heads)
			}
			for h, v := range row {
				if v != float64(raw[i*heads+h]) {
					t.Errorf("%s: layer %d head %d: %g, want the raw %g", mode, i, h, v, raw[i*heads+h])
				}
			}
		}
	}
}
