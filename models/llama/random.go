package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
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
	names := cfg.canonicalNames()
	// One worker per core fills tensors directly in the model's dtype (no float32 copy: a 7B model is 13.5 GB in
	// bf16); they are stored in name order, a group at a time, so memory holds at most one group beyond the model.
	workers := max(1, runtime.GOMAXPROCS(0))
	filled := make([]*tensors.Tensor, len(names))
	errs := make([]error, len(names))
	for start := 0; start < len(names); start += workers {
		end := min(start+workers, len(names))
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				shape := cfg.expectedShape(names[i])
				if len(shape) == 1 {
					filled[i], errs[i] = safetensors.FillTensor(dtype, shape, func() float32 { return 1 })
					return
				}
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				std := 1 / math.Sqrt(float64(shape[1]))
				filled[i], errs[i] = safetensors.FillTensor(dtype, shape, func() float32 { return float32(rng.NormFloat64() * std) })
			}()
		}
		wg.Wait()
		for i := start; i < end; i++ {
			if errs[i] != nil {
				return nil, fmt.Errorf("llama random: %s: %w", names[i], errs[i])
			}
			if err := m.setVariable(names[i], filled[i]); err != nil {
				return nil, err
			}
			filled[i] = nil
		}
	}
	return m, nil
}
