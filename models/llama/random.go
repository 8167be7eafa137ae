package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute/dtypes"
)

// Presets are named LLaMA shapes for benchmarks (random weights; no checkpoint needed).
var Presets = map[string]Config{
	"7b": {VocabSize: 32000, Dim: 4096, HiddenDim: 11008, NumLayers: 32, NumHeads: 32, NumKVHeads: 32, HeadDim: 128,
		MaxSeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000},
	"13b": {VocabSize: 32000, Dim: 5120, HiddenDim: 13824, NumLayers: 40, NumHeads: 40, NumKVHeads: 40, HeadDim: 128,
		MaxSeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000},
	"stories260K": {VocabSize: 512, Dim: 64, HiddenDim: 172, NumLayers: 5, NumHeads: 8, NumKVHeads: 4, HeadDim: 8,
		MaxSeqLen: 512, NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true},
	"tiny": {VocabSize: 256, Dim: 64, HiddenDim: 176, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 16,
		MaxSeqLen: 512, NormEps: 1e-5, RopeTheta: 10000},
}

// RandomModel makes a model of the given shape with random weights (normal, std 1/√fan-in; norms 1), generated in
// parallel per tensor from seed. For benchmarks and tests of shapes no checkpoint exists for here.
func RandomModel(cfg Config, dtype dtypes.DType, seed uint64) (*Model, error) {
	m, err := newModel(cfg, dtype, "random", fmt.Sprintf("random(seed=%d)", seed))
	if err != nil {
		return nil, err
	}
	l := &loader{m: m, source: m.Source}
	names := cfg.canonicalNames()
	values := make([][]float32, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			shape := cfg.expectedShape(name)
			n := 1
			for _, d := range shape {
				n *= d
			}
			v := make([]float32, n)
			if len(shape) == 1 {
				for j := range v {
					v[j] = 1
				}
			} else {
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				std := 1 / math.Sqrt(float64(shape[1]))
				for j := range v {
					v[j] = float32(rng.NormFloat64() * std)
				}
			}
			values[i] = v
		}()
		// Store in order as soon as possible so float32 copies don't pile up for big models.
		if i%4 == 3 || i == len(names)-1 {
			wg.Wait()
			for j := i - i%4; j <= i; j++ {
				if err := l.putFloat32(names[j], cfg.expectedShape(names[j]), values[j]); err != nil {
					return nil, err
				}
				values[j] = nil
			}
		}
	}
	return m, nil
}
