package llama

import (
	"errors"
	"fmt"
	"strings"

	"github.com/adapterlab/llama-adapter/models/gguf"
	"github.com/gomlx/compute/dtypes"
)

// ggufNames maps canonical weight names (global ones whole, per-layer ones by base) to llama.cpp's GGUF names.
var ggufNames = map[string]string{
	wEmbed:    "token_embd.weight",
	wNorm:     "output_norm.weight",
	wLMHead:   "output.weight",
	wAttnNorm: "attn_norm",
	wQ:        "attn_q",
	wK:        "attn_k",
	wV:        "attn_v",
	wO:        "attn_output",
	wFFNNorm:  "ffn_norm",
	wGate:     "ffn_gate",
	wDown:     "ffn_down",
	wUp:       "ffn_up",
}

func ggufName(name string) string {
	if n, ok := ggufNames[name]; ok {
		return n
	}
	var i int
	var base string
	fmt.Sscanf(strings.ReplaceAll(name, ".", " "), "layers %d %s", &i, &base)
	return fmt.Sprintf("blk.%d.%s.weight", i, ggufNames[base])
}

// ConfigFromGGUF reads the architecture from an open GGUF file's llama.* metadata. It refuses architectures other
// than "llama" and features the graph does not implement (partial rotary, rope scaling).
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	m := f.Meta
	arch, err := m.String("general.architecture")
	if err != nil {
		return Config{}, err
	}
	if arch != "llama" {
		return Config{}, fmt.Errorf("llama %s: general.architecture is %q; only \"llama\" GGUF files are supported", f.Path, arch)
	}
	var errs []error
	num := func(key string) int {
		v, err := m.Uint("llama." + key)
		if err != nil {
			errs = append(errs, err)
		}
		return int(min(v, 1<<31))
	}
	c := Config{
		NumLayers: num("block_count"),
		Dim:       num("embedding_length"),
		HiddenDim: num("feed_forward_length"),
		NumHeads:  num("attention.head_count"),
		MaxSeqLen: num("context_length"),
	}
	c.NumKVHeads = c.NumHeads // head_count_kv is optional: plain multi-head attention
	if m.Has("llama.attention.head_count_kv") {
		c.NumKVHeads = num("attention.head_count_kv")
	}
	if c.NormEps, err = m.Float("llama.attention.layer_norm_rms_epsilon"); err != nil {
		errs = append(errs, err)
	}
	c.RopeTheta = 10000 // llama.cpp's default when rope.freq_base is absent
	if m.Has("llama.rope.freq_base") {
		if c.RopeTheta, err = m.Float("llama.rope.freq_base"); err != nil {
			errs = append(errs, err)
		}
	}
	if c.NumHeads > 0 {
		c.HeadDim = c.Dim / c.NumHeads
	}
	if m.Has("llama.attention.key_length") {
		c.HeadDim = num("attention.key_length")
	}
	ropeDim, vocabMeta := c.HeadDim, -1
	if m.Has("llama.rope.dimension_count") {
		ropeDim = num("rope.dimension_count")
	}
	if m.Has("llama.vocab_size") {
		vocabMeta = num("vocab_size")
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	if ropeDim != c.HeadDim {
		return Config{}, fmt.Errorf("llama %s: rope.dimension_count %d differs from the head dim %d (partial rotary embeddings are not supported)",
			f.Path, ropeDim, c.HeadDim)
	}
	if s, err := m.String("llama.rope.scaling.type"); err == nil && s != "none" {
		return Config{}, fmt.Errorf("llama %s: rope scaling %q is not supported", f.Path, s)
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		return Config{}, fmt.Errorf("llama %s: has rope_freqs.weight (Llama-3 rope scaling), which is not supported", f.Path)
	}
	// Vocabulary: the embedding's row count, which must agree with the token list and llama.vocab_size when present.
	emb, ok := f.Tensor(ggufNames[wEmbed])
	if !ok || len(emb.Dims) != 2 {
		return Config{}, fmt.Errorf("llama %s: missing 2-D tensor %q", f.Path, ggufNames[wEmbed])
	}
	c.VocabSize = int(emb.Dims[1])
	if toks, err := m.Strings("tokenizer.ggml.tokens"); err == nil && len(toks) != c.VocabSize {
		return Config{}, fmt.Errorf("llama %s: tokenizer.ggml.tokens has %d entries but %s has %d rows",
			f.Path, len(toks), ggufNames[wEmbed], c.VocabSize)
	}
	if vocabMeta >= 0 && vocabMeta != c.VocabSize {
		return Config{}, fmt.Errorf("llama %s: llama.vocab_size %d but %s has %d rows", f.Path, vocabMeta, ggufNames[wEmbed], c.VocabSize)
	}
	_, hasOutput := f.Tensor(ggufNames[wLMHead])
	c.TieEmbeddings = !hasOutput
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", f.Path, err)
	}
	return c, nil
}

// LoadGGUF loads a llama.cpp GGUF file of architecture "llama". Every tensor is dequantised (F32, F16, BF16, Q4_0,
// Q4_1, Q8_0, Q4_K, Q5_K, Q6_K) to float32 one at a time and converted to dtype; the model then computes with the
// dequantised weights (no quantised matmuls). The q/k rows, which GGUF stores in the interleaved rotary layout,
// are permuted to the graph's rotate-half layout. Without output.weight the LM head is tied to token_embd.
func LoadGGUF(path string, dtype dtypes.DType) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	m, err := newModel(cfg, dtype, "gguf", path)
	if err != nil {
		return nil, err
	}
	l := &loader{m: m, source: path}
	for _, name := range cfg.canonicalNames() {
		disk := ggufName(name)
		info, ok := f.Tensor(disk)
		if !ok {
			return nil, fmt.Errorf("llama %s: missing tensor %q", path, disk)
		}
		shape := info.Shape() // GGUF lists dims innermost first; reversed, a linear layer is [out, in]
		if err := l.checkShape(name, disk, shape); err != nil {
			return nil, err
		}
		w, err := f.ReadFloat32(disk)
		if err != nil {
			return nil, fmt.Errorf("llama: %w", err)
		}
		if err := l.putInterleaved(name, shape, w); err != nil {
			return nil, err
		}
	}
	return m, nil
}
