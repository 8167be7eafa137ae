package adapter

import (
	"math/rand/v2"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/llama"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestPromptCacheV2: with a V2 adapter whose bias/scale/norm terms are away from the identity, the prompt keys and
// values computed once go through the adapted k/v projections, and the cached extension keeps every linear layer's
// and norm's V2 terms: its logits equal the in-graph adapter's; dropping the V2 terms would move them.
func TestPromptCacheV2(t *testing.T) {
	m := loadStories(t)
	a, err := New(m.Store, Config{Layers: 3, PromptLen: 4, Init: InitRandom, Seed: 7, Version: V2}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	vars, _ := a.V2.variables()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, v := range vars {
		cur, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		vals := tensors.MustCopyFlatData[float32](cur)
		for i := range vals {
			vals[i] += float32(0.2 * rng.NormFloat64())
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, cur.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
	pc, kv := textPromptCache(t, a, m)
	ids := tensors.FromFlatDataAndDimensions([]int32{1, 403, 407, 261, 378, 320, 261, 290}, 1, 8)
	want := seqLogits(t, m, ids, inGraph(a, false), nil)
	got := seqLogits(t, m, ids, pc.Extension, kv)
	// The same prompts without V2's terms on the steps: what a cache that forgot them would compute.
	noV2 := seqLogits(t, m, ids, func(g *Graph, extra []*Node) llama.AttentionExtension {
		return pc.Extension(g, extra).(*cachedLinearExtension).cachedExtension
	}, kv)
	if d := assets.MaxAbsDiff(got, want); d > 1e-4 {
		t.Errorf("V2 logits with cached prompt keys/values differ from the in-graph adapter by %g", d)
	}
	if d := assets.MaxAbsDiff(noV2, want); d < 1e-2 {
		t.Errorf("V2's terms move the logits by only %g: the check above would not see them dropped", d)
	}
}
