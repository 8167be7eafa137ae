package llama

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
)

// Weight names used inside the model (the project's canonical names; one per tensor of the decoder).
// Linear weights keep PyTorch's [out, in] layout; q/k rows are in Hugging Face's rotate-half order.
const (
	wEmbed  = "embed"   // [V, C]
	wNorm   = "norm"    // [C], final RMSNorm
	wLMHead = "lm_head" // [V, C], absent when tied
)

// Per-layer weight names.
const (
	wAttnNorm = "attn_norm" // [C]
	wQ        = "wq"        // [H·D, C]
	wK        = "wk"        // [KVH·D, C]
	wV        = "wv"        // [KVH·D, C]
	wO        = "wo"        // [C, H·D]
	wFFNNorm  = "ffn_norm"  // [C]
	wGate     = "w1"        // [F, C], SwiGLU gate
	wDown     = "w2"        // [C, F]
	wUp       = "w3"        // [F, C]
)

// layerWeightNames lists the per-layer weights in load order, as layerVars.slots gives them.
var layerWeightNames = func() []string {
	var names []string
	for _, s := range (&layerVars{}).slots() {
		names = append(names, s.name)
	}
	return names
}()

// expectedShape returns the shape the config implies for a canonical weight name ("embed", "layers.3.wq", ...).
func (c Config) expectedShape(name string) []int {
	C, F, V := c.Dim, c.HiddenDim, c.VocabSize
	base := name
	if strings.HasPrefix(name, "layers.") {
		base = name[strings.LastIndexByte(name, '.')+1:]
	}
	switch base {
	case wEmbed, wLMHead:
		return []int{V, C}
	case wNorm, wAttnNorm, wFFNNorm:
		return []int{C}
	case wQ:
		return []int{c.QDim(), C}
	case wK, wV:
		return []int{c.KVDim(), C}
	case wO:
		return []int{C, c.QDim()}
	case wGate, wUp:
		return []int{F, C}
	case wDown:
		return []int{C, F}
	}
	return nil
}

// canonicalNames lists every weight the config needs, in load order.
func (c Config) canonicalNames() []string {
	names := []string{wEmbed}
	for i := 0; i < c.NumLayers; i++ {
		for _, n := range layerWeightNames {
			names = append(names, fmt.Sprintf("layers.%d.%s", i, n))
		}
	}
	names = append(names, wNorm)
	if !c.TieEmbeddings {
		names = append(names, wLMHead)
	}
	return names
}

// checkpointNames maps each canonical weight (global names whole, per-layer ones by their base) to its name in Hugging
// Face's LlamaForCausalLM and in Meta's original consolidated.*.pth checkpoints.
var checkpointNames = map[string]struct{ hf, meta string }{
	wEmbed:    {"model.embed_tokens.weight", "tok_embeddings.weight"},
	wNorm:     {"model.norm.weight", "norm.weight"},
	wLMHead:   {"lm_head.weight", "output.weight"},
	wAttnNorm: {"input_layernorm", "attention_norm"},
	wFFNNorm:  {"post_attention_layernorm", "ffn_norm"},
	wQ:        {"self_attn.q_proj", "attention.wq"},
	wK:        {"self_attn.k_proj", "attention.wk"},
	wV:        {"self_attn.v_proj", "attention.wv"},
	wO:        {"self_attn.o_proj", "attention.wo"},
	wGate:     {"mlp.gate_proj", "feed_forward.w1"},
	wUp:       {"mlp.up_proj", "feed_forward.w3"},
	wDown:     {"mlp.down_proj", "feed_forward.w2"},
}

// hfName maps a canonical name to the Hugging Face LlamaForCausalLM tensor name.
func hfName(name string) string { return checkpointName(name, true) }

// metaName maps a canonical name to Meta's original checkpoint name (consolidated.*.pth).
func metaName(name string) string { return checkpointName(name, false) }

func checkpointName(name string, hf bool) string {
	pick := func(n struct{ hf, meta string }) string {
		if hf {
			return n.hf
		}
		return n.meta
	}
	if n, ok := checkpointNames[name]; ok {
		return pick(n)
	}
	var i int
	var base string
	fmt.Sscanf(strings.ReplaceAll(name, ".", " "), "layers %d %s", &i, &base)
	if hf {
		return fmt.Sprintf("model.layers.%d.%s.weight", i, pick(checkpointNames[base]))
	}
	return fmt.Sprintf("layers.%d.%s.weight", i, pick(checkpointNames[base]))
}

// interleavedToHalf permutes the rows of a q or k projection from the interleaved rotary layout (Meta's original
// code and llama2.c rotate pairs (2i, 2i+1)) to Hugging Face's rotate-half layout (pairs (i, i+D/2)), so one graph
// serves every checkpoint format: within each head, row 2i+j moves to j·D/2+i.
func interleavedToHalf(w []float32, numHeads, headDim, cols int) []float32 {
	out := make([]float32, len(w))
	half := headDim / 2
	for h := 0; h < numHeads; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				src := (h*headDim + 2*i + j) * cols
				dst := (h*headDim + j*half + i) * cols
				copy(out[dst:dst+cols], w[src:src+cols])
			}
		}
	}
	return out
}

// loader builds a Model weight by weight so that only one tensor's source bytes are in memory at a time.
type loader struct {
	m      *Model
	source string
}

func newModel(cfg Config, dtype dtypes.DType, format, source string) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if dtype != dtypes.Float32 && dtype != dtypes.BFloat16 && dtype != dtypes.Float16 {
		return nil, fmt.Errorf("llama: unsupported weight dtype %s (want float32, bfloat16 or float16)", dtype)
	}
	m := &Model{Config: cfg, DType: dtype, Format: format, Source: source, Store: model.NewStore()}
	m.layers = make([]layerVars, cfg.NumLayers)
	return m, nil
}

// checkShape compares a tensor's shape on disk with what the config implies.
func (l *loader) checkShape(name, diskName string, shape []int) error {
	want := l.m.Config.expectedShape(name)
	if !slices.Equal(want, shape) {
		return fmt.Errorf("llama %s: tensor %q has shape %v but the config (%d layers, C=%d, F=%d, H=%d, KVH=%d, V=%d) implies %v",
			l.source, diskName, shape, l.m.Config.NumLayers, l.m.Config.Dim, l.m.Config.HiddenDim, l.m.Config.NumHeads,
			l.m.Config.NumKVHeads, l.m.Config.VocabSize, want)
	}
	return nil
}

// putFloat32 stores a weight given as float32 values, converted to the model's dtype.
func (l *loader) putFloat32(name string, shape []int, values []float32) error {
	t, err := safetensors.TensorFromFloat32(l.m.DType, shape, values)
	if err != nil {
		return fmt.Errorf("llama %s: converting %s: %w", l.source, name, err)
	}
	return l.m.setVariable(name, t)
}

// putInterleaved stores a weight of a checkpoint whose q and k projections keep the interleaved rotary layout
// (Meta's .pth and GGUF), converting those two to the rotate-half layout first.
func (l *loader) putInterleaved(name string, shape []int, values []float32) error {
	cfg := l.m.Config
	switch _, base := splitLayerName(name); base {
	case wQ:
		values = interleavedToHalf(values, cfg.NumHeads, cfg.HeadDim, cfg.Dim)
	case wK:
		values = interleavedToHalf(values, cfg.NumKVHeads, cfg.HeadDim, cfg.Dim)
	}
	return l.putFloat32(name, shape, values)
}

// putRaw stores a weight given as raw little-endian bytes of a safetensors dtype. When the dtypes agree the bytes
// are copied as they are (bit-exact); otherwise they go through float32.
func (l *loader) putRaw(name string, shape []int, raw []byte, diskDType string) error {
	t, err := safetensors.TensorFromRaw(l.m.DType, shape, raw, diskDType)
	if err != nil {
		return fmt.Errorf("llama %s: %s: %w", l.source, name, err)
	}
	return l.m.setVariable(name, t)
}

// LoadHF loads a Hugging Face LlamaForCausalLM folder (config.json + model.safetensors or a sharded index) or a
// .safetensors file whose folder holds config.json. Weights on disk may be float32, float16 or bfloat16; they are
// converted to dtype.
func LoadHF(path string, dtype dtypes.DType) (*Model, error) {
	dir := path
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir = filepath.Dir(path)
	}
	cfg, err := ConfigFromHF(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenModel(path)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	// A tied model may still ship lm_head.weight; an untied one must.
	if !set.Has(hfName(wLMHead)) && !cfg.TieEmbeddings {
		return nil, fmt.Errorf("llama %s: missing tensor %q (config says tie_word_embeddings=false)", path, hfName(wLMHead))
	}
	m, err := newModel(cfg, dtype, "hf-safetensors", path)
	if err != nil {
		return nil, err
	}
	l := &loader{m: m, source: path}
	var buf []byte
	for _, name := range cfg.canonicalNames() {
		disk := hfName(name)
		info, f, ok := set.Info(disk)
		if !ok {
			return nil, fmt.Errorf("llama %s: missing tensor %q", path, disk)
		}
		if err := l.checkShape(name, disk, info.Shape); err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, f.Path)
		}
		raw, _, err := f.ReadRaw(disk, buf)
		if err != nil {
			return nil, err
		}
		buf = raw[:0]
		if err := l.putRaw(name, info.Shape, raw, info.DType); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// LoadLlama2c loads a llama2.c legacy checkpoint (`.bin`: 7-int32 header, then float32 weights in llama2.c order).
// Its q/k rows use the interleaved rotary layout and are permuted to the rotate-half layout at load.
func LoadLlama2c(path string, dtype dtypes.DType) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("llama2.c: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("llama2.c %s: %w", path, err)
	}
	cfg, err := ConfigFromLlama2c(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	C, F, V, N := int64(cfg.Dim), int64(cfg.HiddenDim), int64(cfg.VocabSize), int64(cfg.NumLayers)
	QD, KVD := int64(cfg.QDim()), int64(cfg.KVDim())
	headSize := int64(cfg.Dim / cfg.NumHeads)
	floats := V*C + N*C + N*QD*C + 2*N*KVD*C + N*C*QD + N*C + N*F*C + N*C*F + N*F*C + C +
		int64(cfg.MaxSeqLen)*headSize // freq_cis_real + freq_cis_imag (unused)
	if !cfg.TieEmbeddings {
		floats += V * C
	}
	if want := llama2cHeaderSize + 4*floats; st.Size() != want {
		return nil, fmt.Errorf("llama2.c %s: file has %d bytes but its header (dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq_len=%d) implies %d",
			path, st.Size(), cfg.Dim, cfg.HiddenDim, cfg.NumLayers, cfg.NumHeads, cfg.NumKVHeads, cfg.VocabSize, cfg.MaxSeqLen, want)
	}
	m, err := newModel(cfg, dtype, "llama2c", path)
	if err != nil {
		return nil, err
	}
	l := &loader{m: m, source: path}
	r := bufio.NewReaderSize(f, 1<<20)
	read := func(n int64) ([]float32, error) {
		v := make([]float32, n)
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			return nil, fmt.Errorf("llama2.c %s: reading weights: %w", path, err)
		}
		return v, nil
	}
	// put stores one [rows, cols] matrix (or vector) of every layer, read as one block [N, rows, cols].
	perLayer := func(base string, rows, cols int64, permuteHeads int) error {
		block, err := read(N * rows * cols)
		if err != nil {
			return err
		}
		for i := int64(0); i < N; i++ {
			w := block[i*rows*cols : (i+1)*rows*cols]
			if permuteHeads > 0 {
				w = interleavedToHalf(w, permuteHeads, cfg.HeadDim, int(cols))
			}
			shape := []int{int(rows), int(cols)}
			if cols == 1 {
				shape = []int{int(rows)}
			}
			if err := l.putFloat32(fmt.Sprintf("layers.%d.%s", i, base), shape, w); err != nil {
				return err
			}
		}
		return nil
	}
	emb, err := read(V * C)
	if err != nil {
		return nil, err
	}
	if err := l.putFloat32(wEmbed, []int{int(V), int(C)}, emb); err != nil {
		return nil, err
	}
	steps := []struct {
		name       string
		rows, cols int64
		permute    int
	}{
		{wAttnNorm, C, 1, 0}, {wQ, QD, C, cfg.NumHeads}, {wK, KVD, C, cfg.NumKVHeads}, {wV, KVD, C, 0},
		{wO, C, QD, 0}, {wFFNNorm, C, 1, 0}, {wGate, F, C, 0}, {wDown, C, F, 0}, {wUp, F, C, 0},
	}
	for _, s := range steps {
		if err := perLayer(s.name, s.rows, s.cols, s.permute); err != nil {
			return nil, err
		}
	}
	norm, err := read(C)
	if err != nil {
		return nil, err
	}
	if err := l.putFloat32(wNorm, []int{int(C)}, norm); err != nil {
		return nil, err
	}
	if _, err := r.Discard(int(int64(cfg.MaxSeqLen) * headSize * 4)); err != nil {
		return nil, fmt.Errorf("llama2.c %s: skipping rotary tables: %w", path, err)
	}
	if !cfg.TieEmbeddings {
		cls, err := read(V * C)
		if err != nil {
			return nil, err
		}
		if err := l.putFloat32(wLMHead, []int{int(V), int(C)}, cls); err != nil {
			return nil, err
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("llama2.c %s: trailing bytes after the weights", path)
	}
	return m, nil
}
