package adapter

import (
	"os"
	"slices"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func loadStories(t *testing.T) *llama.Model {
	t.Helper()
	m, err := llama.Load(assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// genPrompts are two rows of different lengths (left padding and per-row positions are exercised), BOS first.
var genPrompts = [][]int{{1, 403, 407, 261, 378}, {1, 320, 261}}

// generate runs greedy decoding of genPrompts for maxNew tokens: no adapter (ext nil), or an extension builder with
// its extra inputs.
func generate(t *testing.T, m *llama.Model, useCache bool, ext func(*Graph, []*Node) llama.AttentionExtension, extra []*tensors.Tensor) [][]int {
	t.Helper()
	gen := m.NewGenerator(device.MustShared(), 64, useCache)
	gen.Extension = ext
	out, err := gen.Generate(genPrompts, 40, nil, nil, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// inGraph is the adapter's plain extension (prompt keys/values projected inside every step's graph): the reference.
func inGraph(a *Adapter, visualFeatures bool) func(*Graph, []*Node) llama.AttentionExtension {
	return func(g *Graph, extra []*Node) llama.AttentionExtension {
		var vis *Node
		if visualFeatures {
			vis = a.Projection.Token(extra[0])
		}
		return a.Extension(g, vis)
	}
}

// TestPromptCacheZeroGateIsBase: with zero gates the adapter adds exactly 0, so generation through the prompt cache
// gives the base model's tokens, token for token.
func TestPromptCacheZeroGateIsBase(t *testing.T) {
	m := loadStories(t)
	a, err := New(m.Store, Config{Layers: 3, PromptLen: 4, Init: InitZero}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	pc, kv := textPromptCache(t, a, m)
	base := generate(t, m, true, nil, nil)
	got := generate(t, m, true, pc.Extension, kv)
	for r := range base {
		if !slices.Equal(got[r], base[r]) {
			t.Errorf("row %d: zero-gate adapter generated %v, base model %v", r, got[r], base[r])
		}
	}
}

// TestPromptCacheEqualsRecompute: with random (non-zero) gates the adapter changes the generation; the cached path
// (prompt keys/values computed once, KV cache) gives the same tokens as a full forward recompute per step with the
// prompts projected inside the graph, and the same logits on a whole sequence.
func TestPromptCacheEqualsRecompute(t *testing.T) {
	m := loadStories(t)
	a, err := New(m.Store, Config{Layers: 3, PromptLen: 4, Init: InitRandom, Seed: 7}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	pc, kv := textPromptCache(t, a, m)
	if len(kv) != 2*3 {
		t.Fatalf("Compute gave %d tensors, want K and V of 3 layers", len(kv))
	}
	base := generate(t, m, true, nil, nil)
	ref := generate(t, m, false, inGraph(a, false), nil)
	cached := generate(t, m, true, pc.Extension, kv)
	uncached := generate(t, m, false, pc.Extension, kv)
	changed := false
	for r := range ref {
		changed = changed || !slices.Equal(ref[r], base[r])
		if !slices.Equal(cached[r], ref[r]) || !slices.Equal(uncached[r], ref[r]) {
			t.Errorf("row %d:\nrecompute, in-graph prompts: %v\ncached:                      %v\nrecompute, cached prompts:   %v", r, ref[r], cached[r], uncached[r])
		}
	}
	if !changed {
		t.Fatal("the random adapter did not change the generation: the comparison would not catch a dropped adapter")
	}

	// Logits of one sequence: the precomputed prompts against the in-graph projection.
	ids := tensors.FromFlatDataAndDimensions([]int32{1, 403, 407, 261, 378, 320, 261, 290}, 1, 8)
	want := seqLogits(t, m, ids, inGraph(a, false), nil)
	got := seqLogits(t, m, ids, pc.Extension, kv)
	plain := seqLogits(t, m, ids, nil, nil)
	if d := assets.MaxAbsDiff(got, want); d > 1e-5 {
		t.Errorf("logits with cached prompt keys/values differ from the in-graph projection by %g", d)
	}
	if d := assets.MaxAbsDiff(want, plain); d < 1e-2 {
		t.Errorf("the adapter moves the logits by only %g: the check above would not see it missing", d)
	}
}

// textPromptCache builds a's prompt cache on m and computes its prompt keys/values without image features.
func textPromptCache(t *testing.T, a *Adapter, m *llama.Model) (*PromptCache, []*tensors.Tensor) {
	t.Helper()
	pc, err := NewPromptCache(a, m, device.MustShared())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := pc.Compute(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pc, kv
}

// seqLogits returns m's logits on ids (one sequence) with the extension ext builds from the extra inputs (ext nil:
// the base model).
func seqLogits(t *testing.T, m *llama.Model, ids *tensors.Tensor, ext func(g *Graph, extra []*Node) llama.AttentionExtension, extra []*tensors.Tensor) []float32 {
	t.Helper()
	args := append([]any{ids}, anys(extra)...)
	out, err := model.CallOnceN(device.MustShared(), m.Store, func(_ *model.Scope, g *Graph, in []*Node) *Node {
		inputs := llama.Inputs{Tokens: in[0]}
		if ext != nil {
			inputs.Extension = ext(g, in[1:])
		}
		return m.Forward(g, inputs).Logits
	}, args...)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

func anys(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// TestPromptCacheVisualToken: for a multimodal adapter (random projection) the image features change the prompts'
// keys/values (the visual token is added to every prompt), per row, and the cached generation with features equals
// the in-graph reference.
func TestPromptCacheVisualToken(t *testing.T) {
	m := loadStories(t)
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 3, Visual: &VisualConfig{Scales: 2, FeatureDim: 8}}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := NewPromptCache(a, m, device.MustShared())
	if err != nil {
		t.Fatal(err)
	}
	feats := func(seed float32) *tensors.Tensor {
		v := make([]float32, 2*2*8)
		for i := range v {
			v[i] = seed * float32((i*7)%5-2)
		}
		return tensors.FromFlatDataAndDimensions(v, 2, 2, 8)
	}
	kvA, err := pc.Compute(feats(1))
	if err != nil {
		t.Fatal(err)
	}
	kvB, err := pc.Compute(feats(-0.5))
	if err != nil {
		t.Fatal(err)
	}
	kA, kB := tensors.MustCopyFlatData[float32](kvA[0]), tensors.MustCopyFlatData[float32](kvB[0])
	if d := assets.MaxAbsDiff(kA, kB); d < 1e-3 {
		t.Errorf("other image features moved the prompt keys by only %g", d)
	}
	if s := kvA[0].Shape().Dimensions; s[0] != 2 {
		t.Errorf("prompt keys %v: want one set per row", s)
	}
	ref := generate(t, m, false, inGraph(a, true), []*tensors.Tensor{feats(1)})
	got := generate(t, m, true, pc.Extension, kvA)
	for r := range ref {
		if !slices.Equal(got[r], ref[r]) {
			t.Errorf("row %d with image features: cached %v, in-graph recompute %v", r, got[r], ref[r])
		}
	}
	if _, err := pc.Compute(tensors.FromFlatDataAndDimensions(make([]float32, 2*3*8), 2, 3, 8)); err == nil {
		t.Error("features of the wrong shape were accepted")
	}
}

// TestPromptCacheModelMismatch: an adapter is refused on a model of another shape.
func TestPromptCacheModelMismatch(t *testing.T) {
	m := loadStories(t)
	other := m.Config
	other.NumLayers++
	a, err := New(model.NewStore(), Config{Layers: 2, PromptLen: 4}, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPromptCache(a, m, device.MustShared()); err == nil {
		t.Error("an adapter for a 6-layer model was accepted on a 5-layer one")
	}
}

// BenchmarkGenerateAdapter measures greedy KV-cache generation (batch 1, 16-token prompt, 112 new tokens) with a
// K=10 adapter on every layer: prompts projected inside each step's graph (in-graph) against once per generation
// (cached). stories260K, or SmolLM2 with $SQA_BENCH_MODEL=smollm2 (a real model: hold the heavy lock).
func BenchmarkGenerateAdapter(b *testing.B) {
	path := assets.Path("models", "stories260K", "stories260K.bin")
	if os.Getenv("SQA_BENCH_MODEL") == assets.SmolLM2 {
		p, err := assets.ModelPath(assets.SmolLM2)
		if err != nil {
			b.Skip(err)
		}
		path = p
	}
	m, err := llama.Load(path, dtypes.Float32)
	if err != nil {
		b.Skip(err)
	}
	a, err := New(m.Store, Config{Layers: m.Config.NumLayers, PromptLen: 10, Init: InitRandom}, m.Config)
	if err != nil {
		b.Fatal(err)
	}
	prompt := make([]int, 16)
	for i := range prompt {
		prompt[i] = 1 + i*7%(m.Config.VocabSize-1)
	}
	pc, err := NewPromptCache(a, m, device.MustShared())
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"in-graph", "cached"} {
		b.Run(mode, func(b *testing.B) {
			gen := m.NewGenerator(device.MustShared(), 128, true)
			one := func() int {
				var extra []*tensors.Tensor
				if mode == "cached" {
					if extra, err = pc.Compute(nil); err != nil {
						b.Fatal(err)
					}
					gen.Extension = pc.Extension
				} else {
					gen.Extension = inGraphExt(a)
				}
				out, err := gen.Generate([][]int{prompt}, 112, nil, nil, extra...)
				if err != nil {
					b.Fatal(err)
				}
				return len(out[0])
			}
			one() // compile
			b.ResetTimer()
			n := 0
			for i := 0; i < b.N; i++ {
				n += one()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func inGraphExt(a *Adapter) func(*Graph, []*Node) llama.AttentionExtension {
	return func(g *Graph, _ []*Node) llama.AttentionExtension { return a.Extension(g, nil) }
}
