package adapter

// LLaMA-Adapter V2's extra terms (Gao et al., 2023), switched on by Config.Version = "v2":
//
//	every linear layer of the frozen model (q, k, v, o, gate, up, down of every layer, and the LM head):
//	    y = s ⊙ (W·x + b)         b [out] starts at 0, s [out] at 1
//	every RMSNorm weight (each layer's two and the final one) is a trainable copy of the pretrained weight
//
// so at step 0 the model is still exactly the pretrained one (with V1's zero gates). The terms reach the decoder
// through llama.LinearExtension: the extension returned by Adapter.Extension implements it as well, and the
// decoder's KVProjector applies it, so the prompts' keys and values go through the same adapted k/v projections
// as the word tokens' (as litgpt's adapter_v2 and the golden adapter_v2_tiny compute).
//
// Storage: one variable per kind, stacked over the model's N layers ([N, out] biases and scales, [N, C] norms), plus
// the head's [V] bias and scale and the final norm [C]: 19 variables whatever the depth, so the optimizer and the
// checkpoint handle a handful of tensors instead of 16·N+3.
//
// Early fusion (Config.Fusion) is V2's other change, independent of these terms: the visual token is added to the
// prompts of the lowest adapted layers only (extension.layerPrompts).

import (
	"fmt"
	"strconv"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Version selects the adapter's trainable terms.
type Version string

// Versions.
const (
	V1 Version = ""   // prompts and gates (+ the visual projection): the paper's LLaMA-Adapter
	V2 Version = "v2" // V1 plus a bias and a scale on every linear layer and trainable RMSNorm weights
)

// Fusion values (besides a count N of layers from the bottom of the adapted stack).
const (
	FusionAll   = "all"   // the visual token is added to every adapted layer's prompts (V1); stored as ""
	FusionFirst = "first" // to the lowest adapted layer's only (V2's early fusion)
)

// VisualLayers is how many adapted layers, counted from the lowest, receive the visual token: L for "" or "all",
// 1 for "first", N for a count. An invalid value gives an error naming it.
func (c Config) VisualLayers() (int, error) {
	switch c.Fusion {
	case "", FusionAll:
		return c.Layers, nil
	case FusionFirst:
		return 1, nil
	}
	n, err := strconv.Atoi(c.Fusion)
	if err != nil || n < 1 || n > c.Layers {
		return 0, fmt.Errorf("adapter: fusion %q: want %q, %q or a count of adapted layers in 1..%d", c.Fusion, FusionAll, FusionFirst, c.Layers)
	}
	return n, nil
}

// normalizeV2 maps the spelled-out defaults ("v1", "all") to the empty values, so that a config naming them keeps
// V1's JSON (and run ids).
func (c Config) normalizeV2() Config {
	if c.Version == "v1" {
		c.Version = V1
	}
	if c.Fusion == FusionAll {
		c.Fusion = ""
	}
	return c
}

// validateV2 checks Version and Fusion.
func (c Config) validateV2() error {
	if c.Version != V1 && c.Version != V2 && c.Version != "v1" {
		return fmt.Errorf("adapter: unknown version %q (want v1 or v2)", c.Version)
	}
	_, err := c.VisualLayers()
	return err
}

// v2Counts returns V2's biases, scales and norm weights for a model: per layer one bias and one scale per output
// feature of q, k, v, o, gate, up and down (H·D + 2·KVH·D + C + 2·F + C), the head's V each, and 2·N·C + C norm
// weights.
func v2Counts(m llama.Config) (biases, scales, norms int) {
	perLayer := 0
	for _, l := range llama.LayerLinears {
		perLayer += m.OutDim(l)
	}
	biases = m.NumLayers*perLayer + m.OutDim(llama.LinearHead)
	return biases, biases, (2*m.NumLayers + 1) * m.Dim
}

// V2Terms holds V2's variables (all float32 and trainable).
type V2Terms struct {
	// Bias and Scale are indexed by llama.Linear: [N, out] for the seven per-layer linears, [V] for LinearHead.
	Bias, Scale [llama.LinearHead + 1]*model.Variable
	// AttnNorm and FFNNorm [N, C] are the layers' two RMSNorm weights, FinalNorm [C] the final one.
	AttnNorm, FFNNorm, FinalNorm *model.Variable
}

// linearTensorName is the file name of linear l's bias or scale ("v2.self_attn.q_proj.bias").
func linearTensorName(l llama.Linear, what string) string { return "v2." + l.String() + "." + what }

// normTensorNames are the file names of AttnNorm, FFNNorm, FinalNorm.
var normTensorNames = [3]string{"v2.input_layernorm.weight", "v2.post_attention_layernorm.weight", "v2.model.norm.weight"}

// variables lists the terms in file order, with their file names.
func (v *V2Terms) variables() ([]*model.Variable, []string) {
	var vs []*model.Variable
	var names []string
	for _, l := range append(append([]llama.Linear{}, llama.LayerLinears...), llama.LinearHead) {
		vs = append(vs, v.Bias[l], v.Scale[l])
		names = append(names, linearTensorName(l, "bias"), linearTensorName(l, "scale"))
	}
	vs = append(vs, v.AttnNorm, v.FFNNorm, v.FinalNorm)
	return vs, append(names, normTensorNames[:]...)
}

// newV2Terms creates V2's variables in store: biases 0, scales 1, norms copied from the frozen model's norm
// weights, which store must hold (the adapter is created in the model's store).
func newV2Terms(store *model.Store, m llama.Config) (*V2Terms, error) {
	v := &V2Terms{}
	N := m.NumLayers
	mk := func(name string, vals []float32, dims ...int) (*model.Variable, error) {
		x, err := store.CreateVariable(Scope+"/v2/"+name, tensors.FromFlatDataAndDimensions(vals, dims...))
		if err != nil {
			return nil, fmt.Errorf("adapter v2: %w", err)
		}
		return x, nil
	}
	var err error
	for _, l := range append(append([]llama.Linear{}, llama.LayerLinears...), llama.LinearHead) {
		dims := []int{N, m.OutDim(l)}
		if l == llama.LinearHead {
			dims = dims[1:]
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		ones := make([]float32, n)
		for i := range ones {
			ones[i] = 1
		}
		name := l.String()
		if v.Bias[l], err = mk(name+"/bias", make([]float32, n), dims...); err != nil {
			return nil, err
		}
		if v.Scale[l], err = mk(name+"/scale", ones, dims...); err != nil {
			return nil, err
		}
	}
	norms := func(n llama.Norm) ([]float32, error) {
		layers := []int{-1}
		if n != llama.NormFinal {
			layers = layers[:0]
			for i := range N {
				layers = append(layers, i)
			}
		}
		var all []float32
		for _, i := range layers {
			fv := llama.FrozenNorm(store, i, n)
			if fv == nil {
				return nil, fmt.Errorf("adapter v2: the store holds no frozen %s weight of layer %d to start the trainable copy from (create the adapter in the model's store)", n, i)
			}
			t, err := fv.Value()
			if err != nil {
				return nil, fmt.Errorf("adapter v2: %s of layer %d: %w", n, i, err)
			}
			vals, err := float32Values(t)
			if err != nil {
				return nil, fmt.Errorf("adapter v2: %s of layer %d: %w", n, i, err)
			}
			if len(vals) != m.Dim {
				return nil, fmt.Errorf("adapter v2: %s of layer %d has %d values, want C=%d", n, i, len(vals), m.Dim)
			}
			all = append(all, vals...)
		}
		return all, nil
	}
	for _, x := range []struct {
		n    llama.Norm
		dst  **model.Variable
		name string
		dims []int
	}{{llama.NormAttn, &v.AttnNorm, "input_layernorm", []int{N, m.Dim}}, {llama.NormFFN, &v.FFNNorm, "post_attention_layernorm", []int{N, m.Dim}}, {llama.NormFinal, &v.FinalNorm, "final_norm", []int{m.Dim}}} {
		vals, err := norms(x.n)
		if err != nil {
			return nil, err
		}
		if *x.dst, err = mk(x.name, vals, x.dims...); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// float32Values copies a float32, bfloat16 or float16 tensor's values as float32.
func float32Values(t *tensors.Tensor) ([]float32, error) {
	switch t.DType() {
	case dtypes.Float32:
		return tensors.CopyFlatData[float32](t)
	case dtypes.BFloat16:
		return widen[bfloat16.BFloat16](t)
	case dtypes.Float16:
		return widen[float16.Float16](t)
	}
	return nil, fmt.Errorf("unsupported dtype %s (want float32, bfloat16 or float16)", t.DType())
}

// widen copies a half-precision tensor's values (of Go type H) as float32.
func widen[H interface {
	dtypes.Supported
	Float32() float32
}](t *tensors.Tensor) ([]float32, error) {
	raw, err := tensors.CopyFlatData[H](t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(raw))
	for i, x := range raw {
		out[i] = x.Float32()
	}
	return out, nil
}

// IsV2 reports whether v is one of the adapter's V2 terms (a bias, a scale or a norm weight).
func (a *Adapter) IsV2(v *model.Variable) bool {
	if a.V2 == nil {
		return false
	}
	vs, _ := a.V2.variables()
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// v2Extension is the V1 extension plus V2's linear extension, for one graph.
type v2Extension struct {
	*extension
	bias, scale       [llama.LinearHead + 1]*Node
	attnNorm, ffnNorm *Node
	finalNorm         *Node
}

// v2Extension wraps e with the V2 terms' node values in e's graph.
func (v *V2Terms) extension(g *Graph, e *extension) *v2Extension {
	x := &v2Extension{extension: e, attnNorm: v.AttnNorm.NodeValue(g), ffnNorm: v.FFNNorm.NodeValue(g), finalNorm: v.FinalNorm.NodeValue(g)}
	for l := range v.Bias {
		x.bias[l], x.scale[l] = v.Bias[l].NodeValue(g), v.Scale[l].NodeValue(g)
	}
	return x
}

// row returns layer's row [d] of a stacked [N, d] value, or the value itself for layer -1.
func row(x *Node, layer int) *Node {
	if layer < 0 {
		return x
	}
	return Reshape(Slice(x, AxisElem(layer)), x.Shape().Dimensions[1])
}

// ExtendLinear implements llama.LinearExtension: s ⊙ (y + b), in float32 (the decoder converts it back to the
// model's dtype), so a bfloat16 model still sees scales that moved by less than bfloat16's step at 1.
func (x *v2Extension) ExtendLinear(layer int, l llama.Linear, y *Node) *Node {
	b, s := row(x.bias[l], layer), row(x.scale[l], layer)
	yf := ConvertDType(y, dtypes.Float32)
	return Mul(Add(yf, ExpandLeftToRank(b, y.Rank())), ExpandLeftToRank(s, y.Rank()))
}

// ExtendNorm implements llama.LinearExtension: the trainable copy of the norm weight.
func (x *v2Extension) ExtendNorm(layer int, n llama.Norm, w *Node) *Node {
	switch n {
	case llama.NormAttn:
		return row(x.attnNorm, layer)
	case llama.NormFFN:
		return row(x.ffnNorm, layer)
	}
	return x.finalNorm
}

// v2Ref ties one Hugging Face-named V2 tensor ("model.layers.3.self_attn.q_proj.adapter_bias",
// "model.norm.weight", ...) to its row of a stacked variable (layer -1: the whole variable).
type v2Ref struct {
	name  string
	v     *model.Variable
	layer int
}

// hfRefs lists every V2 tensor under its Hugging Face name (the names of litgpt-free exports such as the golden
// adapter_v2_tiny's, with "adapter_bias"/"adapter_scale" as litgpt's AdapterV2Linear calls them).
func (v *V2Terms) hfRefs(numLayers int) []v2Ref {
	var refs []v2Ref
	for i := range numLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		refs = append(refs, v2Ref{p + "input_layernorm.weight", v.AttnNorm, i}, v2Ref{p + "post_attention_layernorm.weight", v.FFNNorm, i})
		for _, l := range llama.LayerLinears {
			refs = append(refs, v2Ref{p + l.String() + ".adapter_bias", v.Bias[l], i}, v2Ref{p + l.String() + ".adapter_scale", v.Scale[l], i})
		}
	}
	h := llama.LinearHead
	return append(refs, v2Ref{"model.norm.weight", v.FinalNorm, -1},
		v2Ref{h.String() + ".adapter_bias", v.Bias[h], -1}, v2Ref{h.String() + ".adapter_scale", v.Scale[h], -1})
}

// rowWidth is the length of one row of r's variable (the whole variable for layer -1).
func (r v2Ref) rowWidth() int {
	d := r.v.Shape().Dimensions
	return d[len(d)-1]
}

// setV2FromHF sets every V2 term from read(hfName), which returns a tensor's values and shape; the shape of each
// must be its row's [out] or [C]. source names the file in errors.
func (a *Adapter) setV2FromHF(source string, read func(name string) ([]float32, []int, error)) error {
	if a.V2 == nil {
		return fmt.Errorf("adapter %s: V2 tensors given to a %s adapter", source, "v1")
	}
	values := map[*model.Variable][]float32{}
	for _, r := range a.V2.hfRefs(a.Model.NumLayers) {
		vals, shape, err := read(r.name)
		if err != nil {
			return fmt.Errorf("adapter %s: %w", source, err)
		}
		w := r.rowWidth()
		if len(shape) != 1 || shape[0] != w {
			return fmt.Errorf("adapter %s: V2 tensor %q has shape %v, want [%d]", source, r.name, shape, w)
		}
		all, ok := values[r.v]
		if !ok {
			if all, err = variableValues(r.v); err != nil {
				return fmt.Errorf("adapter %s: %s: %w", source, r.name, err)
			}
			values[r.v] = all
		}
		copy(all[max(r.layer, 0)*w:], vals)
	}
	for v, all := range values {
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(all, v.Shape().Dimensions...)); err != nil {
			return fmt.Errorf("adapter %s: %s: %w", source, v.Name(), err)
		}
	}
	return nil
}

// v2HF returns every V2 term's current value under its Hugging Face name, in hfRefs order.
func (a *Adapter) v2HF() ([]string, [][]float32, error) {
	var names []string
	var out [][]float32
	for _, r := range a.V2.hfRefs(a.Model.NumLayers) {
		all, err := variableValues(r.v)
		if err != nil {
			return nil, nil, fmt.Errorf("adapter: %s: %w", r.name, err)
		}
		w := r.rowWidth()
		names = append(names, r.name)
		out = append(out, all[max(r.layer, 0)*w:][:w])
	}
	return names, out, nil
}

// variableValues copies a float32 variable's values.
func variableValues(v *model.Variable) ([]float32, error) {
	t, err := v.Value()
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](t)
}
