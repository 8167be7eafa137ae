package evaluate

import (
	"math/rand/v2"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/backend"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
)

// TestLetterScoringAgreesWithGeneration forces the answer: each example's options include the token that greedy
// generation picks first, so letter scoring must choose that option. Prompts of different lengths share batches
// (padding), the adapter has random (non-zero) gates and a visual projection fed with per-example features.
func TestLetterScoringAgreesWithGeneration(t *testing.T) {
	m, err := llama.Load(assets.Require(t, assets.Golden("llama_tiny")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: 2, PromptLen: 4, Init: adapter.InitRandom, Seed: 3,
		Visual: &adapter.VisualConfig{Scales: 2, FeatureDim: 8}}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Model: m, Adapter: a, Backend: backend.MustShared(), BatchSize: 3, PadMultiple: 8, MaxLen: 64}
	rng := rand.New(rand.NewPCG(9, 9))
	var gens []GenExample
	for i := 0; i < 7; i++ {
		p := []int{1}
		for j := 0; j < 3+rng.IntN(14); j++ {
			p = append(p, 3+rng.IntN(250))
		}
		f := make([]float32, 16)
		for k := range f {
			f[k] = float32(rng.NormFloat64())
		}
		gens = append(gens, GenExample{ID: string(rune('a' + i)), Prompt: p, Features: f})
	}
	out, err := r.Generate(gens, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	var letters []LetterExample
	var want []int
	for i, g := range gens {
		if len(out[i]) != 3 {
			t.Fatalf("example %d: %d tokens generated, want 3", i, len(out[i]))
		}
		first := int32(out[i][0])
		opts := []int32{(first + 1) % 256, (first + 7) % 256, (first + 13) % 256}
		pos := i % 3
		opts[pos] = first
		want = append(want, pos)
		prompt := make([]int32, len(g.Prompt))
		for j, id := range g.Prompt {
			prompt[j] = int32(id)
		}
		letters = append(letters, LetterExample{ID: g.ID, Prompt: prompt, Options: opts, Features: g.Features})
	}
	got, err := r.ScoreLetters(letters)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("example %d: letter scoring chose option %d, generation's token is option %d", i, got[i], want[i])
		}
	}
	// A single-example batch must give the same generation as the padded batch.
	solo, err := r.Generate(gens[3:4], 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range solo[0] {
		if solo[0][k] != out[3][k] {
			t.Errorf("padding changed generation: %v alone vs %v in a batch", solo[0], out[3])
			break
		}
	}
}
