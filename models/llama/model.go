// Package llama is a frozen LLaMA decoder for GoMLX: configuration (Hugging Face config.json, llama2.c header,
// Meta params.json, GGUF metadata), streaming weight loaders (HF safetensors single or sharded in f32/f16/bf16,
// llama2.c legacy .bin, Meta consolidated .pth, GGUF), the decoder graph (RMSNorm, rotary embeddings in HF's
// rotate-half layout with optional Llama 3 frequency scaling, grouped-query attention, SwiGLU MLP, final norm, LM
// head with optional tied embeddings) and KV-cache decoding.
//
// Reading order: Forward (embed, N blocks, final norm, head); block, one layer, x + attention(norm(x)) then
// + mlp(norm(x)); attention, where the extension's term is added; rope.go for the rotary tables, cache.go for the
// KV cache, generate.go for prefill and decode steps.
//
// Why the project's own graph rather than GoMLX's ml/zoo/transformer: the adapter needs one seam inside
// attention, a per-layer extension that sees the layer's rotated queries and its frozen k/v projections and adds a
// term to the attention output before the output projection (AttentionExtension). The zoo's layers don't expose
// that point, and its weight naming/rotary layout would need a translation layer anyway; the decoder itself is a
// few hundred lines of core/graph ops. A second seam, LinearExtension (linearext.go), sees every linear layer's
// output and every RMSNorm weight (LLaMA-Adapter V2's bias, scale and norm terms).
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
	slotByName          map[string]**model.Variable // built on first setVariable
}

// layerVars holds one decoder layer's frozen weights.
type layerVars struct {
	attnNorm, wq, wk, wv, wo, ffnNorm, gate, down, up *model.Variable
}

// weightSlot ties a canonical weight name to the field that holds its variable.
type weightSlot struct {
	name string
	v    **model.Variable
}

// slots lists the layer's weights in load order (the order of layerWeightNames).
func (lv *layerVars) slots() []weightSlot {
	return []weightSlot{{wAttnNorm, &lv.attnNorm}, {wQ, &lv.wq}, {wK, &lv.wk}, {wV, &lv.wv}, {wO, &lv.wo},
		{wFFNNorm, &lv.ffnNorm}, {wGate, &lv.gate}, {wDown, &lv.down}, {wUp, &lv.up}}
}

// slots maps every canonical weight name ("embed", "layers.3.wq", ...) to the field that holds it: the one table
// every loader (and RandomModel) stores through, via setVariable.
func (m *Model) slots() map[string]**model.Variable {
	s := map[string]**model.Variable{wEmbed: &m.embed, wNorm: &m.norm, wLMHead: &m.lmHead}
	for i := range m.layers {
		for _, w := range m.layers[i].slots() {
			s[fmt.Sprintf("layers.%d.%s", i, w.name)] = w.v
		}
	}
	return s
}

// setVariable stores t as the non-trainable variable of a canonical weight name.
func (m *Model) setVariable(name string, t *tensors.Tensor) error {
	if m.slotByName == nil {
		m.slotByName = m.slots()
	}
	slot, ok := m.slotByName[name]
	if !ok {
		return fmt.Errorf("llama %s: unexpected weight name %q", m.Source, name)
	}
	v, err := m.Store.CreateVariable(variablePath(name), t)
	if err != nil {
		return fmt.Errorf("llama %s: %s: %w", m.Source, name, err)
	}
	v.SetTrainable(false)
	*slot = v
	return nil
}

// variablePath is the store path of a canonical weight name.
func variablePath(name string) string { return Scope + "/" + strings.ReplaceAll(name, ".", "/") }

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
	// Project maps x [..., C] to keys and values [..., KVH, D] with the layer's frozen wk/wv (no rotary embedding),
	// extended by the pass's LinearExtension when it has one.
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
	// AttentionMask [B, S, T] bool, optional, further restricts which keys each query may attend, on top of the
	// causal order and KeyMask (T as for KeyMask). With it, several independent continuations of one prefix can
	// share a row, each seeing only the prefix and its own earlier tokens (cloze scoring packs a problem's options
	// so). nil leaves attention as it was.
	AttentionMask *Node
	// Cache, when set, makes this an incremental step: new keys/values are written at Cache.Pos and attention sees
	// the cache up to Cache.Pos+S.
	Cache *Cache
	// Extension adds the adapter's term in each layer (nil: plain LLaMA). When it also implements LinearExtension,
	// it extends every linear layer and RMSNorm weight as well.
	Extension AttentionExtension
	// Hidden asks for every hidden state (HF's output_hidden_states: embeddings, each layer's output, the last one
	// after the final norm).
	Hidden bool
	// SkipLogits leaves Outputs.Logits nil (for callers that only need the final hidden state).
	SkipLogits bool
	// Remat checkpoints each layer's input (GoMLX Node.Checkpoint): a gradient keeps only those and recomputes a
	// layer's activations in the backward pass, less memory for one more forward pass.
	Remat bool
}

// Outputs of Forward.
type Outputs struct {
	Logits *Node   // [B, S, V] float32
	Final  *Node   // [B, S, C] after the final norm, in the model's dtype
	Hidden []*Node // when asked: N+1 states [B, S, C]
	Cache  *Cache  // the updated cache, when one was given
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

// Forward builds the decoder graph: embed, N blocks, final norm, LM head.
func (m *Model) Forward(g *Graph, in Inputs) Outputs {
	return m.forward(g, in, false)
}

// forward is Forward; coreAttention sends a SeqLens batch through GoMLX's attention.Core even where the backend has
// no fused attention (Core's decomposed path), so that tests check the fused path's wiring on a CPU.
func (m *Model) forward(g *Graph, in Inputs, coreAttention bool) Outputs {
	ctx := m.newAttnContext(g, in, coreAttention)
	x := Gather(m.embed.NodeValue(g), InsertAxes(in.Tokens, -1)) // [B, S, C]
	var out Outputs
	if in.Hidden {
		out.Hidden = append(out.Hidden, x)
	}
	for i := range m.layers {
		if in.Remat {
			x = x.Checkpoint()
		}
		x = m.block(i, x, ctx)
		if in.Hidden && i < len(m.layers)-1 {
			out.Hidden = append(out.Hidden, x)
		}
	}
	if in.Remat {
		x = x.StopCheckpoint()
	}
	out.Final = m.rmsNorm(x, extendNorm(ctx.lin, -1, NormFinal, m.norm.NodeValue(g)))
	if in.Hidden {
		out.Hidden = append(out.Hidden, out.Final)
	}
	if !in.SkipLogits {
		out.Logits = m.LogitsFromFinal(out.Final, in.Extension)
	}
	out.Cache = ctx.nextCache
	return out
}

// block is one decoder layer (pre-norm residual): x + attention(norm(x)), then + mlp(norm(x)).
func (m *Model) block(i int, x *Node, ctx *attnContext) *Node {
	lv := &m.layers[i]
	g := x.Graph()
	x = Add(x, m.attention(i, m.rmsNorm(x, extendNorm(ctx.lin, i, NormAttn, lv.attnNorm.NodeValue(g))), ctx))
	return Add(x, m.mlp(i, m.rmsNorm(x, extendNorm(ctx.lin, i, NormFFN, lv.ffnNorm.NodeValue(g))), ctx.lin))
}

// attnContext is what every layer's attention shares within one forward pass.
type attnContext struct {
	cos, sin  *Node // [B, S, D] rotary tables at each token's position
	bias      *Node // [B, 1, 1, S, T] float32: 0 where a query may see a key, negBig elsewhere
	seqLens   *Node // [B] int32, only when the fused attention.Core path runs
	cache     *Cache
	nextCache *Cache // the updated cache, filled layer by layer
	ext       AttentionExtension
	lin       LinearExtension // ext as a LinearExtension, or nil
}

func (m *Model) newAttnContext(g *Graph, in Inputs, coreAttention bool) *attnContext {
	B, S := in.Tokens.Shape().Dimensions[0], in.Tokens.Shape().Dimensions[1]
	ctx := &attnContext{cache: in.Cache, ext: in.Extension, lin: linearExtension(in.Extension)}
	T := S           // keys seen
	var offset *Node // absolute index of the first new token: the cache position, or 0
	if in.Cache != nil {
		T = in.Cache.length()
		offset = ConvertDType(in.Cache.Pos, dtypes.Int32)
		ctx.nextCache = &Cache{Pos: in.Cache.Pos}
	}
	positions := in.Positions
	if positions == nil {
		positions = Iota(g, shapes.Make(dtypes.Int32, B, S), 1)
		if offset != nil {
			positions = Add(positions, offset)
		}
	}
	ctx.cos, ctx.sin = m.rotary(positions, T)

	keyMask := in.KeyMask
	if in.SeqLens != nil {
		if keyMask != nil || in.Cache != nil || in.AttentionMask != nil {
			panic("llama.Forward: SeqLens excludes KeyMask, AttentionMask and Cache")
		}
		seqLens := ConvertDType(in.SeqLens, dtypes.Int32)
		keyMask = LessThan(Iota(g, shapes.Make(dtypes.Int32, B, T), 1), InsertAxes(seqLens, -1))
		if coreAttention || (in.Positions == nil && m.FusedAttention(g.Backend())) {
			ctx.seqLens = seqLens
		}
	}
	ctx.bias = attentionBias(g, B, S, T, offset, keyMask, in.AttentionMask)
	return ctx
}

// attentionBias returns [B, 1, 1, S, T] float32: 0 where query s may attend key t (causal over the absolute key
// index vs the query's index offset+s, keyMask [B, T] and mask [B, S, T] when given), negBig elsewhere.
func attentionBias(g *Graph, B, S, T int, offset, keyMask, mask *Node) *Node {
	qIdx := Iota(g, shapes.Make(dtypes.Int32, B, S, T), 1)
	if offset != nil {
		qIdx = Add(qIdx, offset)
	}
	kIdx := Iota(g, shapes.Make(dtypes.Int32, B, S, T), 2)
	allowed := LessOrEqual(kIdx, qIdx)
	if keyMask != nil {
		allowed = LogicalAnd(allowed, BroadcastToDims(InsertAxes(keyMask, 1), B, S, T))
	}
	if mask != nil {
		allowed = LogicalAnd(allowed, mask)
	}
	bias := Where(allowed, ScalarZero(g, dtypes.Float32), Scalar(g, dtypes.Float32, negBig))
	return Reshape(bias, B, 1, 1, S, T)
}

// attention is layer i's self-attention on normalized states h [B, S, C], plus the extension's term (the
// adapter), projected back by wo.
func (m *Model) attention(i int, h *Node, ctx *attnContext) *Node {
	cfg, lv, g := m.Config, &m.layers[i], h.Graph()
	B, S := h.Shape().Dimensions[0], h.Shape().Dimensions[1]
	H, KVH, D := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim
	q := applyRope(Reshape(extendLinear(ctx.lin, i, LinearQ, linear(h, lv.wq.NodeValue(g))), B, S, H, D), ctx.cos, ctx.sin)
	k := applyRope(Reshape(extendLinear(ctx.lin, i, LinearK, linear(h, lv.wk.NodeValue(g))), B, S, KVH, D), ctx.cos, ctx.sin)
	v := Reshape(extendLinear(ctx.lin, i, LinearV, linear(h, lv.wv.NodeValue(g))), B, S, KVH, D)
	keys, values := k, v
	if ctx.cache != nil {
		keys, values = ctx.cache.write(ctx.nextCache, i, k, v)
	}
	var out *Node // [B, S, H, D]
	if ctx.seqLens != nil {
		out = fusedAttention(q, keys, values, ctx.seqLens)
	} else {
		out = explicitAttention(q, keys, values, ctx.bias)
	}
	if ctx.ext != nil {
		if extra := ctx.ext.Extend(q, m.kvProjector(i, ctx.lin)); extra != nil {
			out = Add(out, ConvertDType(extra, out.DType())) // the adapter's term
		}
	}
	return extendLinear(ctx.lin, i, LinearO, linear(Reshape(out, B, S, H*D), lv.wo.NodeValue(g)))
}

// kvProjector exposes layer i's frozen wk/wv, extended by lin when not nil, to an AttentionExtension.
func (m *Model) kvProjector(i int, lin LinearExtension) KVProjector {
	cfg := m.Config
	KVH, D := cfg.NumKVHeads, cfg.HeadDim
	lv := &m.layers[i]
	return KVProjector{
		Layer: i, NumHeads: cfg.NumHeads, NumKVHeads: KVH, HeadDim: D,
		Project: func(p *Node) (*Node, *Node) {
			g := p.Graph()
			dims := append(append([]int{}, p.Shape().Dimensions[:p.Rank()-1]...), KVH, D)
			k := extendLinear(lin, i, LinearK, linear(p, lv.wk.NodeValue(g)))
			v := extendLinear(lin, i, LinearV, linear(p, lv.wv.NodeValue(g)))
			return Reshape(k, dims...), Reshape(v, dims...)
		},
	}
}

// fusedAttention is causal grouped-query attention over right-padded rows of lengths seqLens through GoMLX's
// attention.Core (the backend's fused kernel where it has one): q [B, S, H, D], k/v [B, S, KVH, D].
func fusedAttention(q, k, v, seqLens *Node) *Node {
	scale := 1 / math.Sqrt(float64(q.Shape().Dimensions[3]))
	out, _ := attention.Core(q, k, v, attention.LayoutBSHD, attention.CoreOptions{
		Scale: scale, UseCausalMask: true, QuerySeqLen: seqLens, KVSeqLen: seqLens})
	return out
}

// explicitAttention is grouped-query attention in plain ops: q [B, S, H, D] against keys/values [B, T, KVH, D]
// with an additive bias [B, 1, 1, S, T]. Query head h uses kv head h/R without materializing repeated heads; scores
// and softmax run in float32 whatever the weights' dtype (as HF's eager attention).
func explicitAttention(q, k, v, bias *Node) *Node {
	B, S, H, D := q.Shape().Dimensions[0], q.Shape().Dimensions[1], q.Shape().Dimensions[2], q.Shape().Dimensions[3]
	KVH := k.Shape().Dimensions[2]
	qg := Reshape(q, B, S, KVH, H/KVH, D)
	scores := Einsum("bskrd,btkd->bkrst", qg, k)
	scores = Add(MulScalar(ConvertDType(scores, dtypes.Float32), 1/math.Sqrt(float64(D))), bias)
	probs := ConvertDType(Softmax(scores, -1), q.DType())
	return Reshape(Einsum("bkrst,btkd->bskrd", probs, v), B, S, H, D)
}

// mlp is layer i's SwiGLU feed-forward: down(silu(gate(h)) · up(h)), each linear extended by lin when not nil.
func (m *Model) mlp(i int, h *Node, lin LinearExtension) *Node {
	lv, g := &m.layers[i], h.Graph()
	gate := extendLinear(lin, i, LinearGate, linear(h, lv.gate.NodeValue(g)))
	up := extendLinear(lin, i, LinearUp, linear(h, lv.up.NodeValue(g)))
	return extendLinear(lin, i, LinearDown, linear(Mul(Mul(gate, Sigmoid(gate)), up), lv.down.NodeValue(g)))
}

// LogitsAt applies the LM head at chosen positions only: final-norm states final [B, S, C] (Output.Final, with
// SkipLogits) and positions [B, W] (any integer type; row b's W positions) → float32 logits [B, W, V]. The
// vocabulary projection runs on B·W states instead of B·S. ext is the Inputs.Extension of the pass that made
// final (nil for none): when it implements LinearExtension, it extends the head.
func (m *Model) LogitsAt(final, positions *Node, ext AttentionExtension) *Node {
	g := final.Graph()
	B, W := positions.Shape().Dimensions[0], positions.Shape().Dimensions[1]
	rows := Iota(g, shapes.Make(dtypes.Int32, B, W, 1), 0)
	idx := Concatenate([]*Node{rows, InsertAxes(ConvertDType(positions, dtypes.Int32), -1)}, -1) // [B, W, 2]
	return m.LogitsFromFinal(Gather(final, idx), ext)
}

// LogitsFromFinal applies the LM head to final-norm states [..., C], returning float32 logits [..., V]. Callers
// that need logits at a few positions gather those states first (SkipLogits) and save the full-vocabulary matmul.
// ext is the Inputs.Extension of the pass that made final (nil for none): when it implements LinearExtension, it
// extends the head.
func (m *Model) LogitsFromFinal(final *Node, ext AttentionExtension) *Node {
	head := m.embed
	if m.lmHead != nil {
		head = m.lmHead
	}
	logits := extendLinear(linearExtension(ext), -1, LinearHead, linear(final, head.NodeValue(final.Graph())))
	return ConvertDType(logits, dtypes.Float32)
}
