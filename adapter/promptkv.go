package adapter

import (
	"fmt"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// PromptCache is generation with an adapter at the cost of the paper's inference: the adapted layers' prompt keys
// and values, Kp, Vp = Wk·(P_l + v), Wv·(P_l + v), do not depend on the tokens, so Compute projects them once per
// generation and the decoding steps receive them as inputs beside the KV cache (Extension, given to
// llama.Generator.Extension; Compute's tensors go to Generate as its extra inputs) instead of projecting every
// layer's prompts again at every step.
//
// Both halves run the adapter's own extension (Adapter.Extension): Compute calls its Extend on each adapted layer
// with a projector that records what it projects, and each step's extension calls it with a projector that hands
// back the recorded keys/values. The gate formula and the attention over the prompts stay in one place, whatever the
// gate mode.
type PromptCache struct {
	a    *Adapter
	m    *llama.Model
	exec *model.Exec
}

// NewPromptCache prepares the prompt projection of adapter a on model m (the model it was loaded for).
func NewPromptCache(a *Adapter, m *llama.Model, b compute.Backend) (*PromptCache, error) {
	mc := m.Config
	if a.Model.NumLayers != mc.NumLayers || a.Model.Dim != mc.Dim || a.Model.NumHeads != mc.NumHeads {
		return nil, fmt.Errorf("adapter: made for a model with %d layers, C=%d, %d heads; this model has %d layers, C=%d, %d heads",
			a.Model.NumLayers, a.Model.Dim, a.Model.NumHeads, mc.NumLayers, mc.Dim, mc.NumHeads)
	}
	pc := &PromptCache{a: a, m: m}
	exec, err := model.NewExec(b, m.Store, func(_ *model.Scope, g *Graph, inputs []*Node) []*Node {
		var features *Node
		if len(inputs) > 0 {
			features = inputs[0]
		}
		return pc.promptKV(g, features)
	})
	if err != nil {
		return nil, fmt.Errorf("adapter: prompt keys/values: %w", err)
	}
	pc.exec = exec
	return pc, nil
}

// promptKV builds the projection: 2·L nodes, K and V of each adapted layer from the lowest, each [b, K, KVH, D]
// in the model's dtype (b = 1 for shared prompts, the batch when a visual token is added per example).
func (pc *PromptCache) promptKV(g *Graph, features *Node) []*Node {
	a, mc := pc.a, pc.m.Config
	var visual *Node
	b := 1
	if features != nil && a.Projection != nil {
		visual = a.Projection.Token(features)
		b = features.Shape().Dimensions[0]
	}
	ext := a.Extension(g, visual)
	lin, _ := ext.(llama.LinearExtension) // V2: the prompts go through the adapted k/v projections
	// Extend needs queries to attend with; their result is discarded (only the recorded projections are outputs).
	q := Zeros(g, shapes.Make(pc.m.DType, b, 1, mc.NumHeads, mc.HeadDim))
	var out []*Node
	for l := a.Config.FirstLayer(mc); l < mc.NumLayers; l++ {
		kv, err := pc.m.LayerKV(l, lin)
		if err != nil {
			panic(err) // graph building: reported by the Exec as an error
		}
		project, calls := kv.Project, 0
		kv.Project = func(x *Node) (*Node, *Node) {
			k, v := project(x)
			out = append(out, k, v)
			calls++
			return k, v
		}
		ext.Extend(q, kv)
		if calls != 1 {
			panic(fmt.Sprintf("adapter: the extension projected layer %d's prompts %d times, not once", l, calls))
		}
	}
	return out
}

// Compute returns the prompts' keys and values of every adapted layer, for one generation: features [B, M, D]
// (float32, the image features of each row) for an adapter with a visual projection, or nil (text-only adapters;
// a multimodal adapter then adds no visual token). Pass the result to llama.Generator.Generate as its extra inputs.
func (pc *PromptCache) Compute(features *tensors.Tensor) ([]*tensors.Tensor, error) {
	var in []any
	if features != nil {
		if pc.a.Projection == nil {
			return nil, fmt.Errorf("adapter: image features given to an adapter without a visual projection")
		}
		vc := pc.a.Projection.Config
		if d := features.Shape().Dimensions; len(d) != 3 || d[1] != vc.Scales || d[2] != vc.FeatureDim {
			return nil, fmt.Errorf("adapter: image features of shape %v; the visual projection wants [B, %d, %d]", d, vc.Scales, vc.FeatureDim)
		}
		in = append(in, features)
	}
	outs, err := pc.exec.Exec(in...)
	if err != nil {
		return nil, fmt.Errorf("adapter: prompt keys/values: %w", err)
	}
	return outs, nil
}

// Extension is llama.Generator's Extension for a generation whose extra inputs are Compute's tensors: the adapter's
// extension with each adapted layer's prompt keys/values read from those inputs.
func (pc *PromptCache) Extension(g *Graph, extra []*Node) llama.AttentionExtension {
	if want := 2 * pc.a.Config.Layers; len(extra) != want {
		panic(fmt.Sprintf("adapter: the generation has %d extra inputs; the prompt cache gives %d (pass Compute's tensors to Generate)", len(extra), want))
	}
	inner := pc.a.Extension(g, nil)
	c := &cachedExtension{inner: inner, kv: extra, first: pc.a.Config.FirstLayer(pc.m.Config)}
	if lin, ok := inner.(llama.LinearExtension); ok {
		return &cachedLinearExtension{cachedExtension: c, lin: lin} // V2: every linear and norm of the steps too
	}
	return c
}

// cachedLinearExtension is cachedExtension for a V2 adapter: the decoding steps' linear layers and norms keep the
// adapter's bias, scale and norm terms.
type cachedLinearExtension struct {
	*cachedExtension
	lin llama.LinearExtension
}

func (c *cachedLinearExtension) ExtendLinear(layer int, l llama.Linear, y *Node) *Node {
	return c.lin.ExtendLinear(layer, l, y)
}

func (c *cachedLinearExtension) ExtendNorm(layer int, n llama.Norm, w *Node) *Node {
	return c.lin.ExtendNorm(layer, n, w)
}

// cachedExtension runs the adapter's extension on precomputed prompt keys/values.
type cachedExtension struct {
	inner llama.AttentionExtension
	kv    []*Node
	first int
}

func (c *cachedExtension) Extend(q *Node, kv llama.KVProjector) *Node {
	if j := kv.Layer - c.first; j >= 0 {
		k, v := c.kv[2*j], c.kv[2*j+1]
		kv.Project = func(*Node) (*Node, *Node) { return k, v }
	}
	return c.inner.Extend(q, kv)
}
