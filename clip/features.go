package clip

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// FeatureOptions selects the multi-scale features: the class token of each listed layer, stacked [B, M, D].
type FeatureOptions struct {
	// Layers are 1-based encoder layer indices (0 = the embeddings after pre-layernorm), in output order. Empty
	// means DefaultLayers(N).
	Layers []int
	// PostNorm applies the model's post_layernorm to each class token (as HF's pooler_output does for the last).
	PostNorm bool
	// Project applies visual_projection after the norm (D = ProjectionDim instead of C); needs PostNorm, as the
	// projection was trained on normalized tokens.
	Project bool
}

// DefaultLayers returns M=3 evenly spaced layers ending at the last: N/3, 2N/3, N (1-based, rounded down); for
// N < 3 the distinct values of that list. ViT-L/14 (N=24): 8, 16, 24.
func DefaultLayers(n int) []int {
	var out []int
	for _, l := range []int{n / 3, 2 * n / 3, n} {
		if l >= 1 && (len(out) == 0 || out[len(out)-1] != l) {
			out = append(out, l)
		}
	}
	return out
}

// ParseLayers parses "8,16,24" (1-based layer indices).
func ParseLayers(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("clip layers %q: %w", s, err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clip layers %q: empty", s)
	}
	return out, nil
}

// Resolve fills in the default layers and checks the options against the model.
func (o FeatureOptions) Resolve(m *Model) (FeatureOptions, error) {
	if len(o.Layers) == 0 {
		o.Layers = DefaultLayers(m.Config.NumLayers)
	}
	o.Layers = append([]int(nil), o.Layers...)
	for _, l := range o.Layers {
		if l < 0 || l > m.Config.NumLayers {
			return o, fmt.Errorf("clip features: layer %d out of range 0..%d", l, m.Config.NumLayers)
		}
	}
	if o.Project && !o.PostNorm {
		return o, fmt.Errorf("clip features: Project needs PostNorm (the projection expects post-layernormed tokens)")
	}
	if o.Project && !m.HasProjection {
		return o, fmt.Errorf("clip features: Project asked but %s has no visual_projection.weight", m.Source)
	}
	return o, nil
}

// String is a stable description (part of the feature cache key).
func (o FeatureOptions) String() string {
	ls := make([]string, len(o.Layers))
	for i, l := range o.Layers {
		ls[i] = strconv.Itoa(l)
	}
	return fmt.Sprintf("layers=%s postnorm=%t project=%t", strings.Join(ls, ","), o.PostNorm, o.Project)
}

// FeatureDim is D, the width of one feature vector.
func (m *Model) FeatureDim(o FeatureOptions) int {
	if o.Project {
		return m.Config.ProjectionDim
	}
	return m.Config.HiddenSize
}

// FeaturesGraph builds the multi-scale features [B, M, D] (float32) of pixels [B, 3, S, S]; o must be resolved.
// Only the layers up to the deepest one asked for are run.
func (m *Model) FeaturesGraph(pixels *Node, o FeatureOptions) *Node {
	maxL := 0
	for _, l := range o.Layers {
		maxL = max(maxL, l)
	}
	out := m.Forward(pixels, max(maxL, 1), true)
	B, C := pixels.Shape().Dimensions[0], m.Config.HiddenSize
	feats := make([]*Node, len(o.Layers))
	for i, l := range o.Layers {
		f := Reshape(Slice(out.Hidden[l], AxisRange(), AxisElem(0), AxisRange()), B, C)
		if o.PostNorm {
			f = m.layerNorm(f, "post_layernorm")
		}
		if o.Project {
			f = ConvertDType(m.dense(f, "visual_projection", false), dtypes.Float32)
		}
		feats[i] = f
	}
	return Stack(feats, 1)
}

// Encoder runs the feature graph on batches of preprocessed images. It is safe for concurrent use (calls are
// serialized).
type Encoder struct {
	Model   *Model
	Options FeatureOptions // resolved
	mu      sync.Mutex
	exec    *model.Exec
}

// NewEncoder compiles (lazily, per batch size) the feature graph of m on backend.
func (m *Model) NewEncoder(b compute.Backend, o FeatureOptions) (*Encoder, error) {
	o, err := o.Resolve(m)
	if err != nil {
		return nil, err
	}
	e := &Encoder{Model: m, Options: o}
	e.exec, err = model.NewExec(b, m.Store, func(_ *model.Scope, pixels *Node) *Node {
		return m.FeaturesGraph(pixels, o)
	})
	if err != nil {
		return nil, fmt.Errorf("clip encoder: %w", err)
	}
	return e, nil
}

// Dim is the length of one image's features (M·D).
func (e *Encoder) Dim() int { return len(e.Options.Layers) * e.Model.FeatureDim(e.Options) }

// Encode computes the features of preprocessed images (each 3·S·S CHW float32) and returns one [M·D] slice per
// image (row-major [M, D]).
func (e *Encoder) Encode(pixels [][]float32) ([][]float32, error) {
	if len(pixels) == 0 {
		return nil, nil
	}
	S := e.Model.Config.ImageSize
	n := 3 * S * S
	flat := make([]float32, 0, len(pixels)*n)
	for i, p := range pixels {
		if len(p) != n {
			return nil, fmt.Errorf("clip encoder: image %d has %d values, want 3·%d·%d = %d", i, len(p), S, S, n)
		}
		flat = append(flat, p...)
	}
	in := tensors.FromFlatDataAndDimensions(flat, len(pixels), 3, S, S)
	e.mu.Lock()
	outs, err := e.exec.Exec(in)
	e.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("clip encoder: %w", err)
	}
	all, err := tensors.CopyFlatData[float32](outs[0])
	outs[0].FinalizeAll()
	if err != nil {
		return nil, fmt.Errorf("clip encoder: %w", err)
	}
	d := e.Dim()
	res := make([][]float32, len(pixels))
	for i := range res {
		res[i] = all[i*d : (i+1)*d : (i+1)*d]
	}
	return res, nil
}
