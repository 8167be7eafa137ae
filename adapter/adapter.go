// Package adapter implements LLaMA-Adapter v1: learnable adaption prompts in the topmost L layers of a frozen
// LLaMA, attended by the word tokens through zero-initialized gates, and the visual projection that adds one
// image token to every prompt.
//
// The gate formula, per adapted layer l (prompts P_l [K, C], optional visual token v [C] per example):
//
//	Kp, Vp = Wk·(P_l + v), Wv·(P_l + v)          frozen projections of the layer, no rotary embedding
//	A      = softmax(Q·Kpᵀ / √D)                 over the K prompts only, apart from the causal scores
//	out   += tanh(gate_l) · A·Vp                 added to the attention output before Wo
//
// The gate is one of three formulas (GateMode): tanh(gate_l) per head (GateHeadTanh, the official training code:
// gate [1, H, 1, 1]); the per-head gate used as is (GateHead, litgpt's gating_factor); one scalar per layer used as
// is (GateLayer, peft's AdaptionPrompt). Weights, Open and Convert move adapters between the formulas and the
// file formats of the toolkit, the official release, peft and litgpt wherever that is exact (see WithGate).
//
// Gates start at zero, so at step 0 the model is exactly the pretrained one: the added term is 0·A·Vp = 0. The code is extension.Extend, with the gate in
// gateValue.
//
// LLaMA-Adapter V2 (Config.Version "v2", v2.go) adds a bias and a scale on every linear layer and trainable
// RMSNorm weights; Config.Fusion restricts the visual token to the lowest adapted layers (V2's early fusion).
package adapter

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Scope is the store scope of the adapter's (trainable) variables.
const Scope = "/adapter"

// GateMode selects the gate's granularity and function.
type GateMode string

// Gate modes.
const (
	GateHeadTanh GateMode = "head-tanh" // one gate per head, applied as tanh(g): the official LLaMA-Adapter code
	GateHead     GateMode = "head"      // one gate per head, applied as is: litgpt's adapter (gating_factor)
	GateLayer    GateMode = "layer"     // one gate per layer, applied as is: peft's AdaptionPrompt
)

// GateModes lists the gate formulas, the default first.
var GateModes = []GateMode{GateHeadTanh, GateHead, GateLayer}

// ParseGateMode checks a gate formula's name.
func ParseGateMode(s string) (GateMode, error) {
	for _, g := range GateModes {
		if string(g) == s {
			return g, nil
		}
	}
	return "", fmt.Errorf("unknown gate mode %q (want %q, %q or %q)", s, GateHeadTanh, GateHead, GateLayer)
}

// perHead reports whether the formula has one gate per head ([L, H]) rather than one per layer ([L]).
func (g GateMode) perHead() bool { return g == GateHeadTanh || g == GateHead }

// InitScheme selects how gates and prompts start.
type InitScheme string

// Init schemes.
const (
	InitZero   InitScheme = "zero"   // gates 0 (the paper's zero-init attention); prompts normal(0, PromptStd)
	InitRandom InitScheme = "random" // gates normal(0, GateStd) as well: the paper's rand-init attention baseline
)

// Config is the adapter's configuration.
type Config struct {
	Layers    int        `json:"layers"`     // L: adapted layers (the topmost L of the model)
	PromptLen int        `json:"prompt_len"` // K: prompt tokens per layer
	Gate      GateMode   `json:"gate"`
	Init      InitScheme `json:"init"`
	// PromptStd is the std of the prompts' normal init. Default 1: the official code's nn.Embedding default and
	// peft's normal_(); prompts pass through the frozen Wk/Wv, whose usual inputs (RMS-normalized states) are O(1).
	PromptStd float64 `json:"prompt_std"`
	// GateStd is the std of the gates' normal init under InitRandom (default 1, so tanh(g) spans most of (-1, 1)).
	GateStd float64 `json:"gate_std"`
	Seed    uint64  `json:"seed"`
	// Visual, when set, adds the projection of multi-scale image features to every prompt.
	Visual *VisualConfig `json:"visual,omitempty"`
	// Version "v2" adds LLaMA-Adapter V2's bias, scale and norm terms (v2.go); "" (or "v1", stored as "") is V1.
	Version Version `json:"version,omitempty"`
	// Fusion is which adapted layers receive the visual token: "" (or "all") every one, "first" the lowest only
	// (V2's early fusion), or a count N from the bottom of the adapted stack (VisualLayers).
	Fusion string `json:"fusion,omitempty"`
}

// Defaults fills unset fields with the paper's configuration (K=10, L=30 capped at the model's depth by the caller,
// head-tanh gates, zero init).
func (c Config) Defaults() Config {
	if c.PromptLen == 0 {
		c.PromptLen = 10
	}
	if c.Layers == 0 {
		c.Layers = 30
	}
	if c.Gate == "" {
		c.Gate = GateHeadTanh
	}
	if c.Init == "" {
		c.Init = InitZero
	}
	if c.PromptStd == 0 {
		c.PromptStd = 1
	}
	if c.GateStd == 0 {
		c.GateStd = 1
	}
	if c.Visual != nil {
		v := c.Visual.Defaults()
		c.Visual = &v
	}
	return c.normalizeV2()
}

// Validate checks the config against the model it adapts.
func (c Config) Validate(m llama.Config) error {
	if c.Layers < 1 || c.Layers > m.NumLayers {
		return fmt.Errorf("adapter: L=%d adapted layers does not fit a model of %d layers", c.Layers, m.NumLayers)
	}
	if c.PromptLen < 1 {
		return fmt.Errorf("adapter: prompt length K=%d must be positive", c.PromptLen)
	}
	if _, err := ParseGateMode(string(c.Gate)); err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	if c.Init != InitZero && c.Init != InitRandom {
		return fmt.Errorf("adapter: unknown init scheme %q (want %q or %q)", c.Init, InitZero, InitRandom)
	}
	if c.Visual != nil {
		if err := c.Visual.Validate(); err != nil {
			return err
		}
	}
	return c.validateV2()
}

// FirstLayer is the index of the lowest adapted layer.
func (c Config) FirstLayer(m llama.Config) int { return m.NumLayers - c.Layers }

// gateShape is [L, H] for per-head gates, [L] for per-layer ones.
func (c Config) gateShape(m llama.Config) []int {
	if c.Gate.perHead() {
		return []int{c.Layers, m.NumHeads}
	}
	return []int{c.Layers}
}

// Counts is the adapter's parameter count by part.
type Counts struct {
	Prompts, Gates, Projection int
	// V2's terms (zero for V1): linear biases, linear scales, norm weights.
	Biases, Scales, Norms int
}

// Total is the number of trainable parameters.
func (c Counts) Total() int {
	return c.Prompts + c.Gates + c.Projection + c.Biases + c.Scales + c.Norms
}

// Count returns the adapter's trainable parameters for a model: L·K·C prompts, L·H (head-tanh) or L (layer)
// gates, plus the visual projection when configured, plus V2's biases, scales and norm weights for Version v2
// (v2Counts). For LLaMA-7B (C=4096, H=32), K=10, L=30, head-tanh: 1,228,800 + 960 = 1,229,760 (V1), 4,279,744
// (V2, TestCountV2_7B).
func Count(cfg Config, m llama.Config) Counts {
	cfg = cfg.Defaults()
	n := Counts{Prompts: cfg.Layers * cfg.PromptLen * m.Dim, Gates: 1}
	for _, d := range cfg.gateShape(m) {
		n.Gates *= d
	}
	if cfg.Visual != nil {
		n.Projection = cfg.Visual.NumParams(m.Dim)
	}
	if cfg.Version == V2 {
		n.Biases, n.Scales, n.Norms = v2Counts(m)
	}
	return n
}

// Summary is a printable parameter report.
func (c Counts) Summary() string {
	total := c.Total()
	v2 := ""
	if c.Biases+c.Scales+c.Norms > 0 {
		v2 = fmt.Sprintf(" + V2 biases %s + scales %s + norms %s", commas(c.Biases), commas(c.Scales), commas(c.Norms))
	}
	return fmt.Sprintf("adapter parameters: prompts %s + gates %s + visual projection %s%s = %s trainable (%.1f MB in float32)",
		commas(c.Prompts), commas(c.Gates), commas(c.Projection), v2, commas(total), float64(4*total)/1e6)
}

func commas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Adapter holds the adapter's variables in a model.Store (shared with the frozen model's weights).
type Adapter struct {
	Config Config
	Model  llama.Config
	// Prompts [L, K, C] and Gates [L, H] or [L] are trainable variables.
	Prompts, Gates *model.Variable
	// Projection is the visual projection (nil for text-only).
	Projection *Projection
	// V2 holds V2's terms (nil for V1).
	V2 *V2Terms
}

// New creates an adapter's variables in store, initialized by cfg.Init with cfg.Seed (host-side, so every backend
// starts from the same values).
func New(store *model.Store, cfg Config, m llama.Config) (*Adapter, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(m); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	prompts := normal(rng, cfg.Layers*cfg.PromptLen*m.Dim, cfg.PromptStd)
	gshape := cfg.gateShape(m)
	ng := 1
	for _, d := range gshape {
		ng *= d
	}
	gates := make([]float32, ng) // zero init
	if cfg.Init == InitRandom {
		gates = normal(rng, ng, cfg.GateStd)
		if cfg.Gate == GateHead {
			// The same draw as head-tanh's, stored as the gate value tanh(g) that head uses as is: both formulas
			// start as the same model, with every gate in (-1, 1) (a raw normal(0, 1) would put a third of the
			// heads beyond ±1, weighting the prompts above the word tokens' whole attention, whose weights sum to 1).
			for i, g := range gates {
				gates[i] = float32(math.Tanh(float64(g)))
			}
		}
	}
	a := &Adapter{Config: cfg, Model: m}
	var err error
	if a.Prompts, err = store.CreateVariable(Scope+"/prompts", tensors.FromFlatDataAndDimensions(prompts, cfg.Layers, cfg.PromptLen, m.Dim)); err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	if a.Gates, err = store.CreateVariable(Scope+"/gates", tensors.FromFlatDataAndDimensions(gates, gshape...)); err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	if cfg.Visual != nil {
		if a.Projection, err = newProjection(store, *cfg.Visual, m.Dim, rng); err != nil {
			return nil, err
		}
	}
	if cfg.Version == V2 {
		if a.V2, err = newV2Terms(store, m); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func normal(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return v
}

// Variables lists the adapter's trainable variables.
func (a *Adapter) Variables() []*model.Variable {
	vs := []*model.Variable{a.Prompts, a.Gates}
	if a.Projection != nil {
		vs = append(vs, a.Projection.Variables()...)
	}
	if a.V2 != nil {
		v2, _ := a.V2.variables()
		vs = append(vs, v2...)
	}
	return vs
}

// Extension returns the attention extension for one graph (with V2, also the llama.LinearExtension of its
// terms). visualToken, if not nil, is the projected image token [B, C] (see Projection.Token) added to every
// prompt of the adapted layers that Config.Fusion selects.
func (a *Adapter) Extension(g *Graph, visualToken *Node) llama.AttentionExtension {
	visualLayers, _ := a.Config.VisualLayers() // validated by New
	e := &extension{a: a, prompts: a.Prompts.NodeValue(g), gates: a.Gates.NodeValue(g), visual: visualToken, visualLayers: visualLayers}
	if a.V2 != nil {
		return a.V2.extension(g, e)
	}
	return e
}

type extension struct {
	a                      *Adapter
	prompts, gates, visual *Node
	visualLayers           int // adapted layers, from the lowest, that receive the visual token
}

// gateValue returns layer j's gate, tanh(gate) or the gate as is [1, KVH, R, 1, 1] per head, or the scalar gate per
// layer, ready to scale probabilities [B, KVH, R, S, K].
func (e *extension) gateValue(j int, kvh, r int) *Node {
	gate := Slice(e.gates, AxisElem(j)) // [1, H] or [1]
	switch e.a.Config.Gate {
	case GateHeadTanh:
		return Reshape(Tanh(gate), 1, kvh, r, 1, 1)
	case GateHead:
		return Reshape(gate, 1, kvh, r, 1, 1)
	}
	return Reshape(gate)
}

// layerPrompts returns adapted layer j's prompts [b, K, C] (float32): b = 1 shared by the batch, or the batch size
// when a visual token is added to every prompt of its example (in the lowest visualLayers adapted layers).
func (e *extension) layerPrompts(j int) *Node {
	p := Slice(e.prompts, AxisElem(j)) // [1, K, C]
	if e.visual != nil && j < e.visualLayers {
		p = Add(p, InsertAxes(ConvertDType(e.visual, p.DType()), 1))
	}
	return p
}

// Extend implements llama.AttentionExtension: the word tokens' queries q [B, S, H, D] attend layer j's K prompts
// on their own, and the result is scaled by the gate: tanh(gate) · softmax(q·Kpᵀ/√D) · Vp.
func (e *extension) Extend(q *Node, kv llama.KVProjector) *Node {
	j := kv.Layer - e.a.Config.FirstLayer(e.a.Model)
	if j < 0 {
		return nil
	}
	B, S := q.Shape().Dimensions[0], q.Shape().Dimensions[1]
	H, KVH, D := kv.NumHeads, kv.NumKVHeads, kv.HeadDim
	R, K := H/KVH, e.a.Config.PromptLen
	dtype := q.DType()
	pk, pv := kv.Project(ConvertDType(e.layerPrompts(j), dtype)) // [b, K, KVH, D]
	// Shared prompts are projected once, then broadcast to the batch (cheaper than projecting B copies).
	pk, pv = BroadcastToDims(pk, B, K, KVH, D), BroadcastToDims(pv, B, K, KVH, D)

	qg := Reshape(q, B, S, KVH, R, D) // query head h uses kv head h/R
	scores := Einsum("bskrd,bjkd->bkrsj", qg, pk)
	scores = MulScalar(ConvertDType(scores, dtypes.Float32), 1/math.Sqrt(float64(D)))
	probs := Softmax(scores, -1) // over the K prompts only
	probs = ConvertDType(Mul(probs, e.gateValue(j, KVH, R)), dtype)
	return Reshape(Einsum("bkrsj,bjkd->bskrd", probs, pv), B, S, H, D)
}
