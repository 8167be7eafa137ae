package adapter

import (
	"fmt"
	"math"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TargetProjectionParams is the paper's size of the visual projection (0.6M), which the default hidden width aims
// at.
const TargetProjectionParams = 600_000

// VisualConfig is the visual projection: M features of width D (multi-scale CLIP class tokens, concatenated to
// M·D), then an MLP to one C-wide token.
type VisualConfig struct {
	Scales     int `json:"scales"`      // M
	FeatureDim int `json:"feature_dim"` // D
	// Hidden is the MLP's hidden width; 0 picks the width that makes the projection about 0.6M parameters for the
	// model's C (see HiddenFor).
	Hidden int `json:"hidden"`
	// Depth is the number of linear layers (1: a single linear map; default 2: linear, SiLU, linear).
	Depth int `json:"depth"`
}

// Defaults fills Depth.
func (v VisualConfig) Defaults() VisualConfig {
	if v.Depth == 0 {
		v.Depth = 2
	}
	return v
}

// Validate checks the visual config.
func (v VisualConfig) Validate() error {
	if v.Scales < 1 || v.FeatureDim < 1 || v.Depth < 1 || v.Hidden < 0 {
		return fmt.Errorf("adapter: visual projection needs scales ≥ 1, feature dim ≥ 1, depth ≥ 1 and hidden ≥ 0: %+v", v)
	}
	return nil
}

// HiddenFor returns the hidden width for a model width C. With Hidden = 0 and depth 2 the parameters are
// (M·D)·h + h + h·C + C; solving for 0.6M gives h = (600,000 − C) / (M·D + 1 + C), rounded. For ViT-L/14
// features (M=3 scales of D=1024) and LLaMA-7B (C=4096): h = 83, 599,123 parameters. Deeper MLPs use the same h.
func (v VisualConfig) HiddenFor(c int) int {
	v = v.Defaults()
	if v.Hidden > 0 || v.Depth == 1 {
		return v.Hidden
	}
	in := v.Scales * v.FeatureDim
	h := int(math.Round(float64(TargetProjectionParams-c) / float64(in+1+c)))
	return max(h, 1)
}

// widths lists the layer widths in → h … → C.
func (v VisualConfig) widths(c int) []int {
	v = v.Defaults()
	ws := []int{v.Scales * v.FeatureDim}
	for i := 0; i < v.Depth-1; i++ {
		ws = append(ws, v.HiddenFor(c))
	}
	return append(ws, c)
}

// NumParams counts the projection's weights and biases for model width c.
func (v VisualConfig) NumParams(c int) int {
	ws := v.widths(c)
	n := 0
	for i := 0; i+1 < len(ws); i++ {
		n += ws[i]*ws[i+1] + ws[i+1]
	}
	return n
}

// Projection is the visual projection's variables: weights [out, in] and biases per layer.
type Projection struct {
	Config          VisualConfig
	Weights, Biases []*model.Variable
}

func newProjection(store *model.Store, v VisualConfig, c int, rng *rand.Rand) (*Projection, error) {
	v = v.Defaults()
	p := &Projection{Config: v}
	ws := v.widths(c)
	for i := 0; i+1 < len(ws); i++ {
		in, out := ws[i], ws[i+1]
		// Weights normal(0, 1/√in) (fan-in scaling, as PyTorch's Linear in spirit); biases zero.
		w, err := store.CreateVariable(fmt.Sprintf("%s/visual/w%d", Scope, i), tensors.FromFlatDataAndDimensions(normal(rng, out*in, 1/math.Sqrt(float64(in))), out, in))
		if err != nil {
			return nil, fmt.Errorf("adapter: %w", err)
		}
		b, err := store.CreateVariable(fmt.Sprintf("%s/visual/b%d", Scope, i), tensors.FromFlatDataAndDimensions(make([]float32, out), out))
		if err != nil {
			return nil, fmt.Errorf("adapter: %w", err)
		}
		p.Weights = append(p.Weights, w)
		p.Biases = append(p.Biases, b)
	}
	return p, nil
}

// Variables lists the projection's variables (w0, b0, w1, b1, ...).
func (p *Projection) Variables() []*model.Variable {
	var vs []*model.Variable
	for i := range p.Weights {
		vs = append(vs, p.Weights[i], p.Biases[i])
	}
	return vs
}

// Token maps features [B, M, D] (float32) to the visual token [B, C].
func (p *Projection) Token(features *Node) *Node {
	g := features.Graph()
	B := features.Shape().Dimensions[0]
	x := Reshape(features, B, p.Config.Scales*p.Config.FeatureDim)
	for i := range p.Weights {
		w, b := p.Weights[i].NodeValue(g), p.Biases[i].NodeValue(g)
		x = Add(Einsum("bi,oi->bo", x, w), InsertAxes(b, 0))
		if i+1 < len(p.Weights) {
			x = Mul(x, Sigmoid(x)) // SiLU
		}
	}
	return x
}
