package llama

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Linear names one of a decoder layer's linear projections, or the LM head.
type Linear int

// The linear layers a LinearExtension sees, in Hugging Face's order within a layer.
const (
	LinearQ    Linear = iota // q_proj [H·D, C]
	LinearK                  // k_proj [KVH·D, C]
	LinearV                  // v_proj [KVH·D, C]
	LinearO                  // o_proj [C, H·D]
	LinearGate               // mlp.gate_proj [F, C]
	LinearUp                 // mlp.up_proj [F, C]
	LinearDown               // mlp.down_proj [C, F]
	LinearHead               // lm_head [V, C] (the embedding when tied); its layer is -1
)

// LayerLinears lists the seven per-layer linear layers in order.
var LayerLinears = []Linear{LinearQ, LinearK, LinearV, LinearO, LinearGate, LinearUp, LinearDown}

// String is the layer's Hugging Face module path within a decoder layer ("self_attn.q_proj", ...) or "lm_head".
func (l Linear) String() string {
	switch l {
	case LinearQ:
		return "self_attn.q_proj"
	case LinearK:
		return "self_attn.k_proj"
	case LinearV:
		return "self_attn.v_proj"
	case LinearO:
		return "self_attn.o_proj"
	case LinearGate:
		return "mlp.gate_proj"
	case LinearUp:
		return "mlp.up_proj"
	case LinearDown:
		return "mlp.down_proj"
	case LinearHead:
		return "lm_head"
	}
	return fmt.Sprintf("Linear(%d)", int(l))
}

// OutDim is the number of output features of linear layer l in a model of config c.
func (c Config) OutDim(l Linear) int {
	switch l {
	case LinearQ:
		return c.NumHeads * c.HeadDim
	case LinearK, LinearV:
		return c.NumKVHeads * c.HeadDim
	case LinearO, LinearDown:
		return c.Dim
	case LinearGate, LinearUp:
		return c.HiddenDim
	case LinearHead:
		return c.VocabSize
	}
	return 0
}

// Norm names one of the decoder's RMSNorms.
type Norm int

// The RMSNorms a LinearExtension sees.
const (
	NormAttn  Norm = iota // a layer's input_layernorm, before attention
	NormFFN               // a layer's post_attention_layernorm, before the MLP
	NormFinal             // model.norm, before the LM head; its layer is -1
)

// String is the norm's Hugging Face module path within a decoder layer, or "model.norm".
func (n Norm) String() string {
	switch n {
	case NormAttn:
		return "input_layernorm"
	case NormFFN:
		return "post_attention_layernorm"
	case NormFinal:
		return "model.norm"
	}
	return fmt.Sprintf("Norm(%d)", int(n))
}

// LinearExtension is the decoder's second seam for adapters, beside AttentionExtension: it sees the output of
// every frozen linear layer and every RMSNorm weight. The decoder consults it when the Inputs.Extension of a
// forward pass (and the ext given to LogitsAt/LogitsFromFinal) also implements LinearExtension; the attention
// extension's KVProjector then projects through the extended k/v layers too, so anything attended through it
// (the adapter's prompts) sees the same projections as the word tokens.
type LinearExtension interface {
	// ExtendLinear returns what layer's linear l outputs in place of y = x·Wᵀ [..., out] (the frozen
	// projection, in the model's dtype); layer is -1 for the LM head. Return y to leave it unchanged. The result
	// is converted back to y's dtype.
	ExtendLinear(layer int, l Linear, y *Node) *Node
	// ExtendNorm returns the RMSNorm weight [C] to use in place of the frozen w; layer is -1 for the final norm.
	// Return w to leave it unchanged. The result is converted to w's dtype.
	ExtendNorm(layer int, n Norm, w *Node) *Node
}

// linearExtension returns ext as a LinearExtension, or nil when it is none.
func linearExtension(ext AttentionExtension) LinearExtension {
	le, _ := ext.(LinearExtension)
	return le
}

// extendLinear applies le (when not nil) to the output y of layer's linear l.
func extendLinear(le LinearExtension, layer int, l Linear, y *Node) *Node {
	if le == nil {
		return y
	}
	return ConvertDType(le.ExtendLinear(layer, l, y), y.DType())
}

// extendNorm applies le (when not nil) to the norm weight w.
func extendNorm(le LinearExtension, layer int, n Norm, w *Node) *Node {
	if le == nil {
		return w
	}
	return ConvertDType(le.ExtendNorm(layer, n, w), w.DType())
}

// FrozenNorm returns the frozen RMSNorm weight variable of a model held in store (layer -1 for NormFinal), so an
// adapter can start trainable copies from it; nil when store holds no such weight.
func FrozenNorm(store *model.Store, layer int, n Norm) *model.Variable {
	var name string
	switch n {
	case NormAttn:
		name = fmt.Sprintf("layers.%d.%s", layer, wAttnNorm)
	case NormFFN:
		name = fmt.Sprintf("layers.%d.%s", layer, wFFNNorm)
	case NormFinal:
		name = wNorm
	default:
		return nil
	}
	return store.GetVariable(variablePath(name))
}
