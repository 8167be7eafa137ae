package train

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
)

// BenchmarkTrainStepStories260K measures adapter training steps (B=8, S=256, K=10, L=5) on the stories260K shape.
func BenchmarkTrainStepStories260K(b *testing.B) {
	m, err := llama.RandomModel(llama.Presets["stories260K"], dtypes.Float32, 1)
	if err != nil {
		b.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: 5, PromptLen: 10, Init: adapter.InitRandom}, m.Config)
	if err != nil {
		b.Fatal(err)
	}
	cfg := PaperConfig()
	cfg.Epochs, cfg.BatchSize, cfg.AccumSteps, cfg.MaxLen, cfg.WarmupEpochs = 1, 8, 1, 256, 0
	tr, err := New(m, a, device.MustShared(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	mk := func(n int) []Example {
		var ex []Example
		for i := 0; i < n; i++ {
			tok := make([]int32, 256)
			mask := make([]bool, 256)
			for j := range tok {
				tok[j] = int32(3 + rng.IntN(500))
			}
			mask[255] = true
			ex = append(ex, Example{ID: strconv.Itoa(i), Tokens: tok, LossMask: mask})
		}
		return ex
	}
	if err := tr.Train(context.Background(), mk(8), Position{}, Hooks{}); err != nil { // compile
		b.Fatal(err)
	}
	data := mk(8 * b.N)
	b.ResetTimer()
	if err := tr.Train(context.Background(), data, Position{}, Hooks{}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(8*256*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
