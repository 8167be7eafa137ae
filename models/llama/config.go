package llama

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Config is the architecture of a LLaMA decoder.
type Config struct {
	VocabSize     int     `json:"vocab_size"`
	Dim           int     `json:"hidden_size"`         // C, the model width
	HiddenDim     int     `json:"intermediate_size"`   // F, the SwiGLU width
	NumLayers     int     `json:"num_hidden_layers"`   // N
	NumHeads      int     `json:"num_attention_heads"` // H
	NumKVHeads    int     `json:"num_key_value_heads"` // grouped-query heads (= H for plain multi-head attention)
	HeadDim       int     `json:"head_dim"`            // D, usually C/H
	MaxSeqLen     int     `json:"max_position_embeddings"`
	NormEps       float64 `json:"rms_norm_eps"`
	RopeTheta     float64 `json:"rope_theta"`
	TieEmbeddings bool    `json:"tie_word_embeddings"` // LM head shares the token embedding matrix
}

// KVDim is the width of the key/value projections (NumKVHeads·HeadDim).
func (c Config) KVDim() int { return c.NumKVHeads * c.HeadDim }

// QDim is the width of the query projection (NumHeads·HeadDim).
func (c Config) QDim() int { return c.NumHeads * c.HeadDim }

// NumParams counts the base model's parameters.
func (c Config) NumParams() int64 {
	C, F, V := int64(c.Dim), int64(c.HiddenDim), int64(c.VocabSize)
	perLayer := 2*C + C*int64(c.QDim()) + 2*C*int64(c.KVDim()) + int64(c.QDim())*C + 3*C*F
	n := V*C + int64(c.NumLayers)*perLayer + C
	if !c.TieEmbeddings {
		n += V * C
	}
	return n
}

// Validate checks the configuration is self-consistent.
func (c Config) Validate() error {
	switch {
	case c.VocabSize <= 0 || c.Dim <= 0 || c.HiddenDim <= 0 || c.NumLayers <= 0 || c.NumHeads <= 0:
		return fmt.Errorf("llama config: vocab, dim, hidden dim, layers and heads must be positive: %+v", c)
	case c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0:
		return fmt.Errorf("llama config: %d heads is not a multiple of %d key/value heads", c.NumHeads, c.NumKVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("llama config: head dim %d must be positive and even (rotary embeddings rotate pairs)", c.HeadDim)
	case c.MaxSeqLen <= 0:
		return fmt.Errorf("llama config: max sequence length %d must be positive", c.MaxSeqLen)
	case c.NormEps <= 0 || c.RopeTheta <= 0:
		return fmt.Errorf("llama config: rms_norm_eps (%g) and rope_theta (%g) must be positive", c.NormEps, c.RopeTheta)
	}
	return nil
}

// hfConfig mirrors the fields of a Hugging Face LlamaConfig that matter here.
type hfConfig struct {
	Config
	HeadDim        *int            `json:"head_dim"`
	NumKVHeads     *int            `json:"num_key_value_heads"`
	TieEmbeddings  *bool           `json:"tie_word_embeddings"`
	HiddenAct      string          `json:"hidden_act"`
	RopeScaling    json.RawMessage `json:"rope_scaling"`
	AttentionBias  bool            `json:"attention_bias"`
	MLPBias        bool            `json:"mlp_bias"`
	ModelType      string          `json:"model_type"`
	Architectures  []string        `json:"architectures"`
	RopeParameters json.RawMessage `json:"rope_parameters"`
}

// ConfigFromHF reads a Hugging Face `config.json` of a LlamaForCausalLM.
func ConfigFromHF(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("llama config: %w", err)
	}
	return parseHFConfig(data, path)
}

func parseHFConfig(data []byte, path string) (Config, error) {
	var h hfConfig
	h.Config.RopeTheta = 10000
	h.Config.NormEps = 1e-6
	h.Config.MaxSeqLen = 2048
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("llama config %s: malformed JSON: %w", path, err)
	}
	c := h.Config
	if h.ModelType != "" && h.ModelType != "llama" {
		return Config{}, fmt.Errorf("llama config %s: model_type %q is not llama", path, h.ModelType)
	}
	if h.HiddenAct != "" && h.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("llama config %s: hidden_act %q unsupported (only silu)", path, h.HiddenAct)
	}
	if h.AttentionBias || h.MLPBias {
		return Config{}, fmt.Errorf("llama config %s: attention/MLP biases are unsupported", path)
	}
	if len(h.RopeScaling) > 0 && string(h.RopeScaling) != "null" {
		return Config{}, fmt.Errorf("llama config %s: rope_scaling %s is unsupported", path, h.RopeScaling)
	}
	if len(h.RopeParameters) > 0 && string(h.RopeParameters) != "null" {
		// transformers ≥ 5 may move rope_theta into rope_parameters.
		var rp struct {
			RopeTheta *float64 `json:"rope_theta"`
			RopeType  string   `json:"rope_type"`
		}
		if err := json.Unmarshal(h.RopeParameters, &rp); err == nil {
			if rp.RopeType != "" && rp.RopeType != "default" {
				return Config{}, fmt.Errorf("llama config %s: rope_type %q is unsupported", path, rp.RopeType)
			}
			if rp.RopeTheta != nil {
				c.RopeTheta = *rp.RopeTheta
			}
		}
	}
	c.NumKVHeads = c.NumHeads
	if h.NumKVHeads != nil {
		c.NumKVHeads = *h.NumKVHeads
	}
	if c.NumHeads > 0 {
		c.HeadDim = c.Dim / c.NumHeads
	}
	if h.HeadDim != nil && *h.HeadDim > 0 {
		c.HeadDim = *h.HeadDim
	}
	c.TieEmbeddings = h.TieEmbeddings != nil && *h.TieEmbeddings
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// llama2cHeaderSize is the 7 int32 fields at the start of a llama2.c legacy checkpoint.
const llama2cHeaderSize = 7 * 4

// ConfigFromLlama2c reads the header of a llama2.c legacy `.bin` checkpoint: dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size (negative when the classifier is not shared with the embedding), seq_len.
// llama2.c fixes rms_norm_eps = 1e-5 and rope theta = 10000.
func ConfigFromLlama2c(r io.Reader) (Config, error) {
	var h [7]int32
	if err := binary.Read(r, binary.LittleEndian, &h); err != nil {
		return Config{}, fmt.Errorf("llama2.c header: %w", err)
	}
	c := Config{
		Dim: int(h[0]), HiddenDim: int(h[1]), NumLayers: int(h[2]), NumHeads: int(h[3]), NumKVHeads: int(h[4]),
		VocabSize: int(h[5]), MaxSeqLen: int(h[6]), NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: true,
	}
	if c.VocabSize < 0 {
		c.VocabSize = -c.VocabSize
		c.TieEmbeddings = false
	}
	if c.NumHeads > 0 {
		c.HeadDim = c.Dim / c.NumHeads
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("llama2.c header %v: %w", h, err)
	}
	if c.Dim%c.NumHeads != 0 {
		return Config{}, fmt.Errorf("llama2.c header: dim %d is not a multiple of %d heads", c.Dim, c.NumHeads)
	}
	return c, nil
}

// metaParams mirrors Meta's `params.json`.
type metaParams struct {
	Dim        int      `json:"dim"`
	NLayers    int      `json:"n_layers"`
	NHeads     int      `json:"n_heads"`
	NKVHeads   *int     `json:"n_kv_heads"`
	VocabSize  int      `json:"vocab_size"`
	MultipleOf int      `json:"multiple_of"`
	FFNDimMult *float64 `json:"ffn_dim_multiplier"`
	NormEps    float64  `json:"norm_eps"`
	RopeTheta  *float64 `json:"rope_theta"`
	MaxSeqLen  int      `json:"max_seq_len"`
}

// ConfigFromMetaParams reads Meta's original `params.json`. The hidden dimension is derived as Meta's code does
// (2/3·4·dim, times ffn_dim_multiplier, rounded up to multiple_of) unless hiddenDim > 0 overrides it (it is checked
// against the weights at load time anyway). vocab_size may be -1 there: the weights then tell.
func ConfigFromMetaParams(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("llama params: %w", err)
	}
	var p metaParams
	if err := json.Unmarshal(data, &p); err != nil {
		return Config{}, fmt.Errorf("llama params %s: malformed JSON: %w", path, err)
	}
	c := Config{Dim: p.Dim, NumLayers: p.NLayers, NumHeads: p.NHeads, NumKVHeads: p.NHeads, VocabSize: p.VocabSize,
		NormEps: p.NormEps, RopeTheta: 10000, MaxSeqLen: p.MaxSeqLen}
	if p.NKVHeads != nil {
		c.NumKVHeads = *p.NKVHeads
	}
	if p.RopeTheta != nil {
		c.RopeTheta = *p.RopeTheta
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.MaxSeqLen == 0 {
		c.MaxSeqLen = 2048
	}
	if c.NumHeads > 0 {
		c.HeadDim = c.Dim / c.NumHeads
	}
	hidden := 4 * c.Dim
	hidden = 2 * hidden / 3
	if p.FFNDimMult != nil {
		hidden = int(*p.FFNDimMult * float64(hidden))
	}
	if m := p.MultipleOf; m > 0 {
		hidden = m * ((hidden + m - 1) / m)
	}
	c.HiddenDim = hidden
	return c, nil
}
