// Package llama is a frozen LLaMA decoder for GoMLX: configuration (Hugging Face config.json, llama2.c header,
// Meta params.json), streaming weight loaders (HF safetensors single or sharded in f32/f16/bf16, llama2.c legacy
// .bin, Meta consolidated .pth), the decoder graph (RMSNorm, rotary embeddings in HF's rotate-half layout,
// grouped-query attention, SwiGLU MLP, final norm, LM head with optional tied embeddings) and KV-cache decoding.
//
// Why the project's own graph rather than GoMLX's ml/zoo/transformer: the adapter needs one seam inside
// attention, a per-layer extension that sees the layer's rotated queries and its frozen k/v projections and adds a
// term to the attention output before the output projection (AttentionExtension). The zoo's layers don't expose
// that point, and its weight naming/rotary layout would need a translation layer anyway; the decoder itself is a
// few hundred lines of core/graph ops.
//
// Frozen weights are non-trainable variables in the Model's model.Store (scope "/llama"): optimizers only see
// trainable variables, and GoMLX's autodiff computes gradients only for the variables asked for, so no gradient
// is ever formed for a base weight. The package knows nothing of adapters or ScienceQA.
package llama

import (
	"fmt"

	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/attention"
	"github.com/gomlx/gomlx/ml/model"
)

// Scope is the store scope holding the frozen base weights.
const Scope = "/llama"

// FusedAttention reports whether forward passes given SeqLens (training, letter scoring) use the backend's fused
// attention (cuDNN's on XLA CUDA).
func (m *Model) FusedAttention(b compute.Backend) bool {
	return !m.DecomposedAttention && b.Capabilities().Operations[compute.OpTypeFusedScaledDotProductAttention]
}

// Model is a loaded, frozen LLaMA.
type Model struct {
	Config Config
	// DType is the weights' (and matmuls') dtype: float32, bfloat16 or float16. Norms and softmax run in float32.
	DType dtypes.DType
	// Format is "hf-safetensors", "llama2c" or "meta-pth"; Source the path it was loaded from.
	Format, Source string
	// Store holds the weights as non-trainable variables under Scope. Adapters add their own variables to it.
	Store *model.Store
	// DecomposedAttention keeps attention in plain ops (scores, softmax, weighted sum) even where the backend offers
	// fused attention: a fallback, and the way to compare both on one backend.
	DecomposedAttention bool

	embed, norm, lmHead *model.Variable
	layers              []layerVars
}

type layerVars struct {
	attnNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3 *model.Variable
}

func (m *Model) setVariable(name string, t *tensors.Tensor) error {
	path := Scope + "/" + strings.ReplaceAll(name, ".", "/")
	v, err := m.Store.CreateVariable(path, t)
	if err != nil {
		return fmt.Errorf("llama %s: %s: %w", m.Source, name, err)
	}
	v.SetTrainable(false)
	switch name {
	case wEmbed:
		m.embed = v
		return nil
	case wNorm:
		m.norm = v
		return nil
	case wLMHead:
		m.lmHead = v
		return nil
	}
	var i int
	var base string
	if _, err := fmt.Sscanf(strings.ReplaceAll(name, ".", " "), "layers %d %s", &i, &base); err != nil || i < 0 || i >= len(m.layers) {
		return fmt.Errorf("llama: unexpected weight name %q", name)
	}
	lv := &m.layers[i]
	switch base {
	case wAttnNorm:
		lv.attnNorm = v
	case wQ:
		lv.wq = v
	case wK:
		lv.wk = v
	case wV:
		lv.wv = v
	case wO:
		lv.wo = v
	case wFFNNorm:
		lv.ffnNorm = v
	case wGate:
		lv.w1 = v
	case wDown:
		lv.w2 = v
	case wUp:
		lv.w3 = v
	default:
		return fmt.Errorf("llama: unexpected weight name %q", name)
	}
	return nil
}

// Load loads a model from any supported format, chosen by what path is:
//   - a folder with config.json (+ model.safetensors or model.safetensors.index.json), a .safetensors file, or an
//     index .json: Hugging Face;
//   - a folder with params.json and consolidated.*.pth, or a .pth file: Meta's original layout;
//   - a .gguf file: llama.cpp GGUF (LoadGGUF);
//   - any other file (usually .bin): llama2.c legacy checkpoint.
func Load(path string, dtype dtypes.DType) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
			return LoadHF(path, dtype)
		}
		if _, err := os.Stat(filepath.Join(path, "params.json")); err == nil {
			return LoadMeta(path, dtype)
		}
		return nil, fmt.Errorf("llama: folder %s has neither config.json (Hugging Face) nor params.json (Meta)", path)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors", ".json":
		return LoadHF(path, dtype)
	case ".pth", ".pt":
		return LoadMeta(path, dtype)
	case ".gguf":
		return LoadGGUF(path, dtype)
	}
	return LoadLlama2c(path, dtype)
}

// Variables returns every base weight variable, for checks that they never change.
func (m *Model) Variables() []*model.Variable {
	var vs []*model.Variable
	for v := range m.Store.IterVariables() {
		if strings.HasPrefix(v.Path(), Scope+"/") {
			vs = append(vs, v)
		}
	}
	return vs
}

// KVProjector gives an attention extension access to one layer's frozen key/value projections.
type KVProjector struct {
	Layer int
	// Project maps x [..., C] to keys and values [..., KVH, D] with the layer's frozen wk/wv (no rotary embedding).
	Project func(x *Node) (k, v *Node)
	// NumHeads, NumKVHeads and HeadDim describe the layer's attention.
	NumHeads, NumKVHeads, HeadDim int
}

// AttentionExtension is the decoder's one seam for adapters. For each layer, Extend receives the word tokens'
// queries after rotary embedding, q [B, S, H, D] (in the model's dtype), and the layer's frozen k/v projections;
// it returns a term [B, S, H, D] added to the attention output before the output projection, or nil to leave the
// layer as it is.
type AttentionExtension interface {
	Extend(q *Node, kv KVProjector) *Node
}

// Inputs of Forward.
type Inputs struct {
	// Tokens [B, S] int32.
	Tokens *Node
	// Positions [B, S] int32 are the rotary positions; nil means 0..S-1 for every row (or Cache.Pos+0..S-1).
	Positions *Node
	// KeyMask [B, T] bool marks real (non-padding) key positions, T = S without cache or the cache length with
	// one. nil means every position is real. Padding queries still produce outputs; mask them in the loss.
	KeyMask *Node
	// SeqLens [B] int32, for right-padded batches without a cache, gives each row's real length instead of KeyMask.
	// With it (and default positions) a backend offering fused attention (cuDNN flash attention on XLA CUDA) runs
	// GoMLX's attention.Core fused op; otherwise it becomes the same padding mask.
	SeqLens *Node
	// Cache, when set, makes this an incremental step: new keys/values are written at Cache.Pos and attention sees
	// the cache up to Cache.Pos+S.
	Cache *Cache
	// Extension adds the adapter's term in each layer (nil: plain LLaMA).
	Extension AttentionExtension
	// ForceCoreAttention uses GoMLX's attention.Core with SeqLens even where the backend has no fused attention (its
	// decomposed path): for tests of the fused path's wiring on CPU.
	ForceCoreAttention bool
	// Hidden asks for every hidden state (HF's output_hidden_states: embeddings, each layer's output, the last one
	// after the final norm).
	Hidden bool
	// SkipLogits leaves Outputs.Logits nil (for callers that only need the final hidden state).
	SkipLogits bool
}

// Outputs of Forward.
type Outputs struct {
	Logits *Node   // [B, S, V] float32
	Final  *Node   // [B, S, C] after the final norm, in the model's dtype
	Hidden []*Node // when asked: N+1 states [B, S, C]
	Cache  *Cache  // the updated cache, when one was given
}

// Cache is a fixed-length key/value cache for incremental decoding: per layer K and V [B, MaxLen, KVH, D] and the
// position Pos (scalar int32) where the next tokens go. Fixed shapes keep one compiled graph per (B, S).
type Cache struct {
	K, V []*Node
	Pos  *Node
}

// CacheShape is the shape of one layer's K (or V) cache.
func (m *Model) CacheShape(batch, maxLen int) shapes.Shape {
	return shapes.Make(m.DType, batch, maxLen, m.Config.NumKVHeads, m.Config.HeadDim)
}

// NewCacheTensors makes zeroed cache tensors (2 per layer: K then V) for a batch and length.
func (m *Model) NewCacheTensors(batch, maxLen int) []*tensors.Tensor {
	ts := make([]*tensors.Tensor, 0, 2*m.Config.NumLayers)
	for i := 0; i < 2*m.Config.NumLayers; i++ {
		ts = append(ts, tensors.FromShape(m.CacheShape(batch, maxLen)))
	}
	return ts
}

// CacheFromNodes builds a Cache from 2·N nodes (K0, V0, K1, V1, ...) and a position.
func CacheFromNodes(kv []*Node, pos *Node) *Cache {
	c := &Cache{Pos: pos}
	for i := 0; i+1 < len(kv); i += 2 {
		c.K = append(c.K, kv[i])
		c.V = append(c.V, kv[i+1])
	}
	return c
}

// Nodes flattens the cache as K0, V0, K1, V1, ...
func (c *Cache) Nodes() []*Node {
	var ns []*Node
	for i := range c.K {
		ns = append(ns, c.K[i], c.V[i])
	}
	return ns
}

// writeCache writes update [B, S, KVH, D] into cache [B, T, KVH, D] at index pos along axis 1. Backends with
// DynamicUpdateSlice (XLA) use it; the pure-Go backend lacks it, so there a one-hot [T, S] selection does the same.
func writeCache(cache, update, pos *Node) *Node {
	g := cache.Graph()
	pos = ConvertDType(pos, dtypes.Int32)
	if g.Backend().Capabilities().Operations[compute.OpTypeDynamicUpdateSlice] {
		zero := ScalarZero(g, dtypes.Int32)
		return DynamicUpdateSlice(cache, update, []*Node{zero, pos, zero, zero})
	}
	T, S := cache.Shape().Dimensions[1], update.Shape().Dimensions[1]
	t := Iota(g, shapes.Make(dtypes.Int32, T, S), 0)
	s := Add(Iota(g, shapes.Make(dtypes.Int32, T, S), 1), pos)
	sel := ConvertDType(Equal(t, s), cache.DType())            // [T, S]
	keep := OneMinus(ReduceAndKeep(sel, ReduceSum, 1))         // [T, 1]: 0 where written
	written := Einsum("ts,bskd->btkd", sel, update)            // [B, T, KVH, D]
	return Add(Mul(cache, Reshape(keep, 1, T, 1, 1)), written) // exact: one term is zero
}

// negBig is added to masked attention scores: finite, so a fully masked row (a padding query) gives a uniform
// distribution instead of NaN.
const negBig = -1e30

// rmsNorm normalizes x over its last axis in float32 and scales by w, returning x's dtype (HF's LlamaRMSNorm).
func (m *Model) rmsNorm(x, w *Node) *Node {
	dtype := x.DType()
	xf := ConvertDType(x, dtypes.Float32)
	ms := ReduceAndKeep(Square(xf), ReduceMean, -1)
	// x / sqrt(ms + eps): Rsqrt has no gradient in GoMLX v0.28.8.
	xf = Div(xf, Sqrt(AddScalar(ms, m.Config.NormEps)))
	return Mul(ConvertDType(xf, dtype), ExpandLeftToRank(w, x.Rank()))
}

// linear computes x [..., in] · Wᵀ for a PyTorch-layout weight W [out, in].
func linear(x, w *Node) *Node {
	return DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
}

// ropeTables returns cos and sin [maxLen, D] (float32) for HF's rotate-half layout: angle_j = pos·θ^(-2j/D) for
// j < D/2, repeated for the second half. Computed on the host in float64 once per graph.
func (m *Model) ropeTables(g *Graph, maxLen int) (cos, sin *Node) {
	D := m.Config.HeadDim
	c := make([]float32, maxLen*D)
	s := make([]float32, maxLen*D)
	for p := 0; p < maxLen; p++ {
		for j := 0; j < D/2; j++ {
			// Same frequency as HF (computed there in float32) and llama2.c.
			invFreq := 1.0 / math.Pow(m.Config.RopeTheta, float64(2*j)/float64(D))
			a := float64(p) * float64(float32(invFreq))
			c[p*D+j], c[p*D+j+D/2] = float32(math.Cos(a)), float32(math.Cos(a))
			s[p*D+j], s[p*D+j+D/2] = float32(math.Sin(a)), float32(math.Sin(a))
		}
	}
	cos = Const(g, tensors.FromFlatDataAndDimensions(c, maxLen, D))
	sin = Const(g, tensors.FromFlatDataAndDimensions(s, maxLen, D))
	return
}

// applyRope rotates x [B, S, heads, D] by per-position cos/sin [B, S, D] (rotate-half layout).
func applyRope(x, cos, sin *Node) *Node {
	dtype := x.DType()
	D := x.Shape().Dimensions[3]
	xf := ConvertDType(x, dtypes.Float32)
	x1 := Slice(xf, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, D/2))
	x2 := Slice(xf, AxisRange(), AxisRange(), AxisRange(), AxisRange(D/2, D))
	rot := Concatenate([]*Node{Neg(x2), x1}, -1)
	cos = InsertAxes(cos, 2)
	sin = InsertAxes(sin, 2)
	return ConvertDType(Add(Mul(xf, cos), Mul(rot, sin)), dtype)
}

// Forward builds the decoder graph.
func (m *Model) Forward(g *Graph, in Inputs) Outputs {
	cfg := m.Config
	B, S := in.Tokens.Shape().Dimensions[0], in.Tokens.Shape().Dimensions[1]
	H, KVH, D := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim
	R := H / KVH

	// Positions and the rotary tables.
	positions := in.Positions
	T := S // keys seen
	if in.Cache != nil {
		T = in.Cache.K[0].Shape().Dimensions[1]
	}
	if positions == nil {
		positions = Iota(g, shapes.Make(dtypes.Int32, B, S), 1)
		if in.Cache != nil {
			positions = Add(positions, ConvertDType(in.Cache.Pos, dtypes.Int32))
		}
	}
	tableLen := cfg.MaxSeqLen
	if T > tableLen {
		tableLen = T
	}
	cosT, sinT := m.ropeTables(g, tableLen)
	cos := Gather(cosT, InsertAxes(positions, -1)) // [B, S, D]
	sin := Gather(sinT, InsertAxes(positions, -1))

	// Attention mask [B, 1, 1, S, T]: causal over absolute key index vs query position, and padding.
	qIdx := Iota(g, shapes.Make(dtypes.Int32, B, S, T), 1)
	if in.Cache != nil {
		qIdx = Add(qIdx, ConvertDType(in.Cache.Pos, dtypes.Int32))
	}
	kIdx := Iota(g, shapes.Make(dtypes.Int32, B, S, T), 2)
	mask := LessOrEqual(kIdx, qIdx)
	keyMask := in.KeyMask
	if in.SeqLens != nil {
		if keyMask != nil || in.Cache != nil {
			panic("llama.Forward: SeqLens excludes KeyMask and Cache")
		}
		keyMask = LessThan(Iota(g, shapes.Make(dtypes.Int32, B, T), 1), InsertAxes(ConvertDType(in.SeqLens, dtypes.Int32), -1))
	}
	fused := in.SeqLens != nil && in.Positions == nil && m.FusedAttention(g.Backend())
	if in.ForceCoreAttention && in.SeqLens != nil {
		fused = true
	}
	if keyMask != nil {
		mask = LogicalAnd(mask, BroadcastToDims(InsertAxes(keyMask, 1), B, S, T))
	}
	bias := Where(mask, ScalarZero(g, dtypes.Float32), Scalar(g, dtypes.Float32, negBig))
	bias = Reshape(bias, B, 1, 1, S, T)

	x := Gather(m.embed.NodeValue(g), InsertAxes(in.Tokens, -1)) // [B, S, C]
	var out Outputs
	if in.Hidden {
		out.Hidden = append(out.Hidden, x)
	}
	var newCache *Cache
	if in.Cache != nil {
		newCache = &Cache{Pos: in.Cache.Pos}
	}
	scale := 1 / math.Sqrt(float64(D))
	for i := 0; i < cfg.NumLayers; i++ {
		lv := &m.layers[i]
		h := m.rmsNorm(x, lv.attnNorm.NodeValue(g))
		q := Reshape(linear(h, lv.wq.NodeValue(g)), B, S, H, D)
		k := Reshape(linear(h, lv.wk.NodeValue(g)), B, S, KVH, D)
		v := Reshape(linear(h, lv.wv.NodeValue(g)), B, S, KVH, D)
		q = applyRope(q, cos, sin)
		k = applyRope(k, cos, sin)
		keys, values := k, v
		if in.Cache != nil {
			keys = writeCache(in.Cache.K[i], k, in.Cache.Pos)
			values = writeCache(in.Cache.V[i], v, in.Cache.Pos)
			newCache.K = append(newCache.K, keys)
			newCache.V = append(newCache.V, values)
		}
		// Grouped-query attention without materializing repeated heads: query head h uses kv head h/R.
		var attn *Node
		if fused {
			seqLens := ConvertDType(in.SeqLens, dtypes.Int32)
			attn, _ = attention.Core(q, keys, values, attention.LayoutBSHD, attention.CoreOptions{
				Scale: scale, UseCausalMask: true, QuerySeqLen: seqLens, KVSeqLen: seqLens})
		} else {
			// Scores and softmax in float32 whatever the weights' dtype (as HF's eager attention).
			qg := Reshape(q, B, S, KVH, R, D)
			scores := Einsum("bskrd,btkd->bkrst", qg, keys)
			scores = Add(MulScalar(ConvertDType(scores, dtypes.Float32), scale), bias)
			probs := ConvertDType(Softmax(scores, -1), m.DType)
			attn = Reshape(Einsum("bkrst,btkd->bskrd", probs, values), B, S, H, D)
		}
		if in.Extension != nil {
			wk, wv := lv.wk.NodeValue(g), lv.wv.NodeValue(g)
			proj := KVProjector{
				Layer: i, NumHeads: H, NumKVHeads: KVH, HeadDim: D,
				Project: func(p *Node) (*Node, *Node) {
					dims := p.Shape().Dimensions[:p.Rank()-1]
					kd := append(append([]int{}, dims...), KVH, D)
					return Reshape(linear(p, wk), kd...), Reshape(linear(p, wv), kd...)
				},
			}
			if extra := in.Extension.Extend(q, proj); extra != nil {
				attn = Add(attn, ConvertDType(extra, attn.DType()))
			}
		}
		x = Add(x, linear(Reshape(attn, B, S, H*D), lv.wo.NodeValue(g)))

		h = m.rmsNorm(x, lv.ffnNorm.NodeValue(g))
		gate := linear(h, lv.w1.NodeValue(g))
		up := linear(h, lv.w3.NodeValue(g))
		x = Add(x, linear(Mul(Mul(gate, Sigmoid(gate)), up), lv.w2.NodeValue(g)))
		if in.Hidden && i < cfg.NumLayers-1 {
			out.Hidden = append(out.Hidden, x)
		}
	}
	out.Final = m.rmsNorm(x, m.norm.NodeValue(g))
	if in.Hidden {
		out.Hidden = append(out.Hidden, out.Final)
	}
	if !in.SkipLogits {
		out.Logits = m.LogitsFromFinal(out.Final)
	}
	out.Cache = newCache
	return out
}

// LogitsFromFinal applies the LM head to final-norm states [..., C], returning float32 logits [..., V]. Callers
// that need logits at a few positions gather those states first (SkipLogits) and save the full-vocabulary matmul.
func (m *Model) LogitsFromFinal(final *Node) *Node {
	head := m.embed
	if m.lmHead != nil {
		head = m.lmHead
	}
	return ConvertDType(linear(final, head.NodeValue(final.Graph())), dtypes.Float32)
}
