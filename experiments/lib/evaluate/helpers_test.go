package evaluate

import (
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
)

// tinyModel is a random model of the tiny preset (float32) drawn with seed.
func tinyModel(t *testing.T, seed uint64) *llama.Model {
	t.Helper()
	m, err := llama.RandomModel(llama.Presets["tiny"], dtypes.Float32, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomAdapter puts an adapter with random (non-zero) gates on m's top 2 layers (K=4), drawn with seed; visual
// adds a projection of 2 feature scales of 8 values, so the visual branch is scored too.
func randomAdapter(t *testing.T, m *llama.Model, seed uint64, visual bool) *adapter.Adapter {
	t.Helper()
	c := adapter.Config{Layers: 2, PromptLen: 4, Init: adapter.InitRandom, Seed: seed}
	if visual {
		c.Visual = &adapter.VisualConfig{Scales: 2, FeatureDim: 8}
	}
	a, err := adapter.New(m.Store, c, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
