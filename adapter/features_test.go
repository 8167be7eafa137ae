package adapter

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestFeaturePath: FeatureTensor checks the projection's shape, and FeatureExtension is the projection's visual
// token added to the prompts (the logits equal Extension with Projection.Token), or the text-only extension
// without features. Counterfactual features (zeros) go through the same path and change the logits.
func TestFeaturePath(t *testing.T) {
	m := loadTiny(t)
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 5, Visual: &VisualConfig{Scales: 2, FeatureDim: 8}}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	feats := make([]float32, 2*2*8)
	for i := range feats {
		feats[i] = float32(rng.NormFloat64())
	}
	ft, err := a.FeatureTensor(feats, 2)
	if err != nil {
		t.Fatal(err)
	}
	if dims := ft.Shape().Dimensions; len(dims) != 3 || dims[0] != 2 || dims[1] != 2 || dims[2] != 8 {
		t.Fatalf("feature tensor %v, want [2 2 8]", dims)
	}
	if none, err := a.FeatureTensor(nil, 2); none != nil || err != nil {
		t.Errorf("no features: %v, %v", none, err)
	}
	if _, err := a.FeatureTensor(feats[:30], 2); err == nil || !strings.Contains(err.Error(), "2×8") {
		t.Errorf("30 values for 2 rows: %v", err)
	}
	text, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 5}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := text.FeatureTensor(feats, 2); err == nil {
		t.Error("an adapter without a visual projection took features")
	}

	ids := tensors.FromFlatDataAndDimensions([]int32{1, 5, 9, 13, 1, 7, 11, 3}, 2, 4)
	run := func(f func(g *Graph, tokens, features *Node) llama.AttentionExtension, features *tensors.Tensor) []float32 {
		out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens, features *Node) *Node {
			return m.Forward(tokens.Graph(), llama.Inputs{Tokens: tokens, Extension: f(tokens.Graph(), tokens, features)}).Logits
		}, ids, features)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	viaMethod := run(func(g *Graph, _, f *Node) llama.AttentionExtension { return a.FeatureExtension(g, f) }, ft)
	byHand := run(func(g *Graph, _, f *Node) llama.AttentionExtension { return a.Extension(g, a.Projection.Token(f)) }, ft)
	textOnly := run(func(g *Graph, _, _ *Node) llama.AttentionExtension { return a.FeatureExtension(g, nil) }, ft)
	textByHand := run(func(g *Graph, _, _ *Node) llama.AttentionExtension { return a.Extension(g, nil) }, ft)
	zeros, err := a.FeatureTensor(make([]float32, len(feats)), 2)
	if err != nil {
		t.Fatal(err)
	}
	counterfactual := run(func(g *Graph, _, f *Node) llama.AttentionExtension { return a.FeatureExtension(g, f) }, zeros)
	differs := false
	for i := range viaMethod {
		if viaMethod[i] != byHand[i] || textOnly[i] != textByHand[i] {
			t.Fatalf("logit %d: FeatureExtension %v vs by hand %v; text-only %v vs %v", i, viaMethod[i], byHand[i], textOnly[i], textByHand[i])
		}
		differs = differs || counterfactual[i] != viaMethod[i]
	}
	if !differs {
		t.Error("zero features gave the same logits as the real ones")
	}
}
