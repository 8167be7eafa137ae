package adapter

import (
	"fmt"
	"math"
	"slices"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Tensor is one named float32 tensor of an adapter file (the visual projection's weights and biases).
type Tensor struct {
	Name   string
	Shape  []int
	Values []float32
}

// Weights is an adapter's tensors outside any model store: what every format's reader returns and every writer
// takes. Read fills it from a file, (*Adapter).Weights from a trained adapter; WithGate moves it to another gate
// formula; Write saves it in a format; Open puts it into a model's store.
type Weights struct {
	// Config describes the tensors: Layers (L), PromptLen (K), Gate and Visual. Its other fields are what the
	// toolkit's file recorded (zero for the other formats).
	Config Config
	// NumLayers (N), Dim (C) and NumHeads (H) describe the model the adapter belongs to. N comes from the adapted
	// layers' indices (always the topmost L of N), C from the prompts, H from per-head gates or the toolkit's
	// metadata. NumHeads is 0 where the file does not say (peft's per-layer gates): converting such an adapter to
	// a per-head formula or to the toolkit's file needs the head count from the caller (ConvertOptions.Heads, or
	// the model given to Open).
	NumLayers, Dim, NumHeads int
	Prompts                  []float32 // [L, K, C]; the prompts of model layer N−L+j are row j
	Gates                    []float32 // [L, H] for head-tanh and head, [L] for layer
	Visual                   []Tensor  // the visual projection (w0, b0, w1, b1, ...) and V2's v2.* terms: only the toolkit's format has them

	// Source is the file the weights were read from ("" when they come from a trained adapter), for errors.
	Source string
	// origin names, for errors, what fixed N, C and H in the file ("layers", "dim", "heads" → a tensor or field).
	origin map[string]string
}

// source returns the file name for error messages.
func (w *Weights) source() string {
	if w.Source == "" {
		return "(in memory)"
	}
	return w.Source
}

func (w *Weights) from(what string) string {
	if s := w.origin[what]; s != "" {
		return s
	}
	return "the adapter"
}

// gateValue returns the value the attention multiplies by for gate i: tanh(g) for head-tanh, g otherwise.
func (w *Weights) gateValue(i int) float64 {
	g := float64(w.Gates[i])
	if w.Config.Gate == GateHeadTanh {
		return math.Tanh(g)
	}
	return g
}

// check verifies that the tensors have the sizes the config and the model shape imply.
func (w *Weights) check() error {
	L, K, C, H := w.Config.Layers, w.Config.PromptLen, w.Dim, w.NumHeads
	if L < 1 || K < 1 || C < 1 {
		return fmt.Errorf("adapter %s: L=%d, K=%d, C=%d: every one must be positive", w.source(), L, K, C)
	}
	if w.NumLayers < L {
		return fmt.Errorf("adapter %s: adapts L=%d layers of a %d-layer model", w.source(), L, w.NumLayers)
	}
	if len(w.Prompts) != L*K*C {
		return fmt.Errorf("adapter %s: %d prompt values for L=%d, K=%d, C=%d", w.source(), len(w.Prompts), L, K, C)
	}
	if _, err := ParseGateMode(string(w.Config.Gate)); err != nil {
		return fmt.Errorf("adapter %s: %w", w.source(), err)
	}
	want := L
	if w.Config.Gate.perHead() {
		if H < 1 {
			return fmt.Errorf("adapter %s: per-head gates (%s) without a head count", w.source(), w.Config.Gate)
		}
		want = L * H
	}
	if len(w.Gates) != want {
		return fmt.Errorf("adapter %s: %d gate values for L=%d layers of %s gates (H=%d)", w.source(), len(w.Gates), L, w.Config.Gate, H)
	}
	return nil
}

// CheckModel reports whether the adapter fits model m: its width, head count (where the file records it) and
// depth must be the model's. Errors name the file and the tensor or field the mismatching size came from.
func (w *Weights) CheckModel(m llama.Config) error {
	if w.Dim != m.Dim {
		return fmt.Errorf("adapter %s: %s has prompts of width C=%d; this model has C=%d", w.source(), w.from("dim"), w.Dim, m.Dim)
	}
	if w.NumHeads != 0 && w.NumHeads != m.NumHeads {
		return fmt.Errorf("adapter %s: %s is for a model with %d heads; this model has %d heads", w.source(), w.from("heads"), w.NumHeads, m.NumHeads)
	}
	if w.Config.Layers > m.NumLayers {
		return fmt.Errorf("adapter %s: adapts L=%d layers but the model has only %d", w.source(), w.Config.Layers, m.NumLayers)
	}
	if w.NumLayers != m.NumLayers {
		return fmt.Errorf("adapter %s: %s: its prompts belong to layers %d..%d, the topmost %d of a %d-layer model; this model has %d layers",
			w.source(), w.from("layers"), w.NumLayers-w.Config.Layers, w.NumLayers-1, w.Config.Layers, w.NumLayers, m.NumLayers)
	}
	return nil
}

// clone returns a deep copy.
func (w *Weights) clone() *Weights {
	c := *w
	c.Prompts = slices.Clone(w.Prompts)
	c.Gates = slices.Clone(w.Gates)
	c.Visual = nil
	for _, t := range w.Visual {
		c.Visual = append(c.Visual, Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Values: slices.Clone(t.Values)})
	}
	if w.Config.Visual != nil {
		v := *w.Config.Visual
		c.Config.Visual = &v
	}
	return &c
}

// WithGate returns the weights under another gate formula, where the two compute the same attention:
//
//   - head-tanh → head stores tanh(g), the value head-tanh multiplies by;
//   - head → head-tanh stores atanh(g), defined only for |g| < 1 (exact up to float32 rounding of atanh);
//   - layer → head or head-tanh repeats each layer's gate over its H heads (needs NumHeads);
//   - head or head-tanh → layer keeps each layer's one value, defined only when all its heads are equal.
//
// Anything else is refused with an error that says why and which formula would carry the adapter as it is.
func (w *Weights) WithGate(to GateMode) (*Weights, error) {
	if _, err := ParseGateMode(string(to)); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", w.source(), err)
	}
	from := w.Config.Gate
	out := w.clone()
	if to == from {
		return out, nil
	}
	L, H := w.Config.Layers, w.NumHeads
	first := w.NumLayers - L
	// values[j][h]: the value multiplying head h of adapted layer j (one entry per layer for layer gates).
	values := make([][]float64, L)
	per := len(w.Gates) / L
	for j := range values {
		for h := 0; h < per; h++ {
			values[j] = append(values[j], w.gateValue(j*per+h))
		}
	}
	if to.perHead() && !from.perHead() {
		if H < 1 {
			return nil, fmt.Errorf("adapter %s: its %s gates (one per layer) do not say how many heads the model has, which the %s formula needs: give the head count (convert -heads H) or load it into a model",
				w.source(), from, to)
		}
		for j := range values {
			values[j] = slices.Repeat(values[j][:1], H)
		}
	}
	if !to.perHead() && from.perHead() {
		for j, v := range values {
			lo, hi := slices.Min(v), slices.Max(v)
			if lo != hi {
				return nil, fmt.Errorf("adapter %s: the heads of layer %d are gated differently (the %s gates multiply by %.6g to %.6g); the %s formula (peft) has one gate per layer and cannot carry them: keep %s (the toolkit's file or the official release) or use %s (litgpt)",
					w.source(), first+j, from, lo, hi, to, GateHeadTanh, GateHead)
			}
			values[j] = v[:1]
		}
	}
	out.Gates = out.Gates[:0]
	for j, v := range values {
		for h, x := range v {
			if to == GateHeadTanh {
				if math.Abs(x) >= 1 {
					return nil, fmt.Errorf("adapter %s: layer %d head %d has gate value %.6g; %s multiplies by tanh(g), whose magnitude stays below 1, so no g gives it (atanh is undefined for |value| ≥ 1): keep %s (litgpt, or the toolkit's file with -gate %s)%s",
						w.source(), first+j, h, x, GateHeadTanh, GateHead, GateHead, layerHint(from))
				}
				x = math.Atanh(x)
			}
			out.Gates = append(out.Gates, float32(x))
		}
	}
	out.Config.Gate = to
	return out, nil
}

func layerHint(from GateMode) string {
	if from == GateLayer {
		return " or " + string(GateLayer) + " (peft)"
	}
	return ""
}

// Weights copies a trained adapter's tensors out of its store.
func (a *Adapter) Weights() (*Weights, error) {
	w := &Weights{Config: a.Config, NumLayers: a.Model.NumLayers, Dim: a.Model.Dim, NumHeads: a.Model.NumHeads}
	for i, v := range a.Variables() {
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("adapter: %s: %w", v.Name(), err)
		}
		vals, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, fmt.Errorf("adapter: %s: %w", v.Name(), err)
		}
		w.put(i, Tensor{Name: a.tensorNames()[i], Shape: t.Shape().Dimensions, Values: vals})
	}
	return w, nil
}

// put stores tensor i of the toolkit's order (tensorNames: prompts, gates, then the visual projection's and V2's
// tensors).
func (w *Weights) put(i int, t Tensor) {
	switch i {
	case 0:
		w.Prompts = t.Values
	case 1:
		w.Gates = t.Values
	default:
		w.Visual = append(w.Visual, t)
	}
}

// NewAdapter creates the adapter's variables in store for model m and sets them to the weights, after checking
// that they fit the model (CheckModel) and that the visual projection has the shapes its config implies.
func (w *Weights) NewAdapter(store *model.Store, m llama.Config) (*Adapter, error) {
	if err := w.CheckModel(m); err != nil {
		return nil, err
	}
	a, err := New(store, w.Config, m)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", w.source(), err)
	}
	vals := map[string]Tensor{
		"prompts": {Name: "prompts", Shape: []int{w.Config.Layers, w.Config.PromptLen, w.Dim}, Values: w.Prompts},
		"gates":   {Name: "gates", Shape: a.Gates.Shape().Dimensions, Values: w.Gates},
	}
	for _, t := range w.Visual {
		vals[t.Name] = t
	}
	err = a.assign(w.source(), func(name string) ([]float32, []int, error) {
		t, ok := vals[name]
		if !ok {
			return nil, nil, fmt.Errorf("missing tensor %q", name)
		}
		if n := len(t.Values); n != product(t.Shape) {
			return nil, nil, fmt.Errorf("tensor %q: %d values for shape %v", name, n, t.Shape)
		}
		return t.Values, t.Shape, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
