package llama

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	// RopeScaling, when set, adjusts the rotary frequencies for contexts longer than the pretraining one
	// (Llama 3.1+). Loaders fill it: HF's config.json rope_scaling; GGUF's llama.rope.scaling.* could too.
	RopeScaling *RopeScaling `json:"rope_scaling,omitempty"`
}

// RopeLlama3 is the rope scaling type of Llama 3.1 and later (Hugging Face's rope_type "llama3").
const RopeLlama3 = "llama3"

// RopeScaling is Llama 3's frequency-dependent rotary scaling. With wavelength λ = 2π/invFreq and
// L = OriginalMaxPositions: λ < L/HighFreqFactor keeps invFreq; λ > L/LowFreqFactor divides it by Factor; in
// between, s = (L/λ − LowFreqFactor)/(HighFreqFactor − LowFreqFactor) mixes the two: (1−s)·invFreq/Factor + s·invFreq.
// The JSON names are Hugging Face's.
type RopeScaling struct {
	Type                 string  `json:"rope_type"` // RopeLlama3, the only one supported
	Factor               float64 `json:"factor"`
	LowFreqFactor        float64 `json:"low_freq_factor"`
	HighFreqFactor       float64 `json:"high_freq_factor"`
	OriginalMaxPositions int     `json:"original_max_position_embeddings"`
}

// Validate checks the scaling's type and parameters.
func (r *RopeScaling) Validate() error {
	switch {
	case r.Type != RopeLlama3:
		return fmt.Errorf("rope scaling type %q is unsupported (only %q)", r.Type, RopeLlama3)
	case r.Factor <= 0 || r.LowFreqFactor <= 0 || r.OriginalMaxPositions <= 0:
		return fmt.Errorf("rope scaling %+v: factor, low_freq_factor and original_max_position_embeddings must be positive", *r)
	case r.HighFreqFactor <= r.LowFreqFactor:
		return fmt.Errorf("rope scaling %+v: high_freq_factor must exceed low_freq_factor", *r)
	}
	return nil
}

// scale applies the scaling to one inverse frequency.
func (r *RopeScaling) scale(invFreq float64) float64 {
	wavelen := 2 * math.Pi / invFreq
	orig := float64(r.OriginalMaxPositions)
	switch {
	case wavelen < orig/r.HighFreqFactor: // high frequencies: local patterns, unchanged
		return invFreq
	case wavelen > orig/r.LowFreqFactor: // low frequencies: stretched to the longer context
		return invFreq / r.Factor
	}
	s := (orig/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
	return (1-s)*invFreq/r.Factor + s*invFreq
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
	if c.RopeScaling != nil {
		if err := c.RopeScaling.Validate(); err != nil {
			return fmt.Errorf("llama config: %w", err)
		}
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
	c.RopeScaling = nil
	// transformers < 5 writes rope_scaling; ≥ 5 may write rope_parameters (which can also hold rope_theta).
	for _, f := range []struct {
		key string
		raw json.RawMessage
	}{{"rope_scaling", h.RopeScaling}, {"rope_parameters", h.RopeParameters}} {
		rs, theta, err := parseHFRope(f.raw)
		if err != nil {
			return Config{}, fmt.Errorf("llama config %s: %s: %w", path, f.key, err)
		}
		if theta != nil {
			c.RopeTheta = *theta
		}
		if rs != nil {
			c.RopeScaling = rs
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

// parseHFRope reads a rope_scaling or rope_parameters object: nil for absent, null or the default rope; the
// scaling for rope_type llama3; an error naming any other type. theta is rope_parameters' rope_theta when present.
func parseHFRope(raw json.RawMessage) (rs *RopeScaling, theta *float64, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	var r struct {
		RopeScaling
		LegacyType string   `json:"type"` // older configs say "type" instead of "rope_type"
		RopeTheta  *float64 `json:"rope_theta"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, nil, fmt.Errorf("malformed %s: %w", raw, err)
	}
	if r.Type == "" {
		r.Type = r.LegacyType
	}
	switch r.Type {
	case "", "default":
		return nil, r.RopeTheta, nil
	case RopeLlama3:
		rs := r.RopeScaling
		if err := rs.Validate(); err != nil {
			return nil, nil, err
		}
		return &rs, r.RopeTheta, nil
	}
	return nil, nil, fmt.Errorf("rope type %q is unsupported (only %q and the default)", r.Type, RopeLlama3)
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
