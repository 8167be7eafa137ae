package llama

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/adapterlab/llama-adapter/models/torchpth"
	"github.com/gomlx/compute/dtypes"
)

// metaShardAxis is the axis along which Meta's model-parallel shards (consolidated.00.pth, .01, ...) split each
// weight: column-parallel layers (wq, wk, wv, w1, w3, the output head) along rows, row-parallel ones (wo, w2) and the
// token embedding along columns; norms are replicated (-1).
func metaShardAxis(name string) int {
	switch base := name; {
	case base == wEmbed:
		return 1
	case base == wLMHead:
		return 0
	case base == wNorm:
		return -1
	}
	_, base := splitLayerName(name)
	switch base {
	case wQ, wK, wV, wGate, wUp:
		return 0
	case wO, wDown:
		return 1
	}
	return -1
}

// splitLayerName splits "layers.3.wq" into (3, "wq").
func splitLayerName(name string) (int, string) {
	var i int
	var base string
	fmt.Sscanf(name, "layers.%d.%s", &i, &base)
	return i, base
}

// LoadMeta loads Meta's original checkpoint: a folder with params.json and consolidated.NN.pth (one file, or
// model-parallel shards that are concatenated tensor by tensor), or a single .pth file whose folder holds
// params.json. Weights may be stored as float32, float16 or bfloat16; q/k rows are converted from Meta's interleaved
// rotary layout to the rotate-half one. The hidden and vocabulary sizes are taken from the weights (params.json may
// say vocab_size -1 and derives the hidden size from multipliers).
func LoadMeta(path string, dtype dtypes.DType) (*Model, error) {
	dir, files := path, []string(nil)
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	} else if st.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "consolidated.*.pth"))
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("llama: %s has params.json but no consolidated.*.pth", path)
		}
	} else {
		dir, files = filepath.Dir(path), []string{path}
	}
	cfg, err := ConfigFromMetaParams(filepath.Join(dir, "params.json"))
	if err != nil {
		return nil, err
	}
	var shards []*torchpth.File
	defer func() {
		for _, s := range shards {
			s.Close()
		}
	}()
	for _, f := range files {
		pf, err := torchpth.Open(f)
		if err != nil {
			return nil, err
		}
		shards = append(shards, pf)
	}
	// Sizes from the weights: vocabulary from the embedding, hidden size from w1 (summing shards).
	shapeOf := func(name string) ([]int, error) {
		var shape []int
		for _, s := range shards {
			info, ok := s.Info(metaName(name))
			if !ok {
				return nil, fmt.Errorf("llama %s: missing tensor %q", s.Path, metaName(name))
			}
			if shape == nil {
				shape = info.Shape
				continue
			}
			if ax := metaShardAxis(name); ax >= 0 && len(info.Shape) > ax {
				shape[ax] += info.Shape[ax]
			}
		}
		return shape, nil
	}
	emb, err := shapeOf(wEmbed)
	if err != nil {
		return nil, err
	}
	w1, err := shapeOf("layers.0." + wGate)
	if err != nil {
		return nil, err
	}
	if len(emb) != 2 || len(w1) != 2 {
		return nil, fmt.Errorf("llama %s: unexpected embedding %v or w1 %v shapes", path, emb, w1)
	}
	if cfg.VocabSize > 0 && cfg.VocabSize != emb[0] {
		return nil, fmt.Errorf("llama %s: params.json says vocab_size %d but tok_embeddings has %d rows", path, cfg.VocabSize, emb[0])
	}
	cfg.VocabSize, cfg.HiddenDim = emb[0], w1[0]
	m, err := newModel(cfg, dtype, "meta-pth", path)
	if err != nil {
		return nil, err
	}
	l := &loader{m: m, source: path}
	for _, name := range cfg.canonicalNames() {
		var parts [][]float32
		var shapes [][]int
		for _, s := range shards {
			v, shape, err := s.ReadFloat32(metaName(name))
			if err != nil {
				return nil, err
			}
			parts, shapes = append(parts, v), append(shapes, shape)
		}
		values, shape := concatShards(parts, shapes, metaShardAxis(name))
		if err := l.checkShape(name, metaName(name), shape); err != nil {
			return nil, err
		}
		if err := l.putInterleaved(name, shape, values); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// concatShards joins 2-D shards along axis (0: rows, 1: columns); -1 or one shard returns the first.
func concatShards(parts [][]float32, shapes [][]int, axis int) ([]float32, []int) {
	if len(parts) == 1 || axis < 0 || len(shapes[0]) != 2 {
		return parts[0], shapes[0]
	}
	rows, cols := shapes[0][0], 0
	if axis == 0 {
		rows = 0
		for _, s := range shapes {
			rows += s[0]
		}
		cols = shapes[0][1]
		var out []float32
		for _, p := range parts {
			out = append(out, p...)
		}
		return out, []int{rows, cols}
	}
	for _, s := range shapes {
		cols += s[1]
	}
	out := make([]float32, 0, rows*cols)
	for r := 0; r < rows; r++ {
		for i, p := range parts {
			c := shapes[i][1]
			out = append(out, p[r*c:(r+1)*c]...)
		}
	}
	return out, []int{rows, cols}
}
