package adapter

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// FormatTag identifies the project's adapter files (safetensors metadata "format").
const FormatTag = "llama-adapter-go/v1"

// fileShape describes the model an adapter was made for, stored in the file's metadata so a mismatch is caught
// before any tensor is read.
type fileShape struct {
	NumLayers int `json:"num_layers"`
	Dim       int `json:"dim"`
	NumHeads  int `json:"num_heads"`
}

// tensorNames lists the adapter's tensors in file order, matching Variables().
func (a *Adapter) tensorNames() []string {
	names := []string{"prompts", "gates"}
	if a.Projection != nil {
		for i := range a.Projection.Weights {
			names = append(names, fmt.Sprintf("visual.w%d", i), fmt.Sprintf("visual.b%d", i))
		}
	}
	if a.V2 != nil {
		_, v2 := a.V2.variables()
		names = append(names, v2...)
	}
	return names
}

// Save writes the adapter (float32) with its config in the metadata, atomically. extra metadata (e.g. the run
// id) is stored beside it.
func (a *Adapter) Save(path string, extra map[string]string) error {
	w, err := a.Weights()
	if err != nil {
		return fmt.Errorf("adapter: saving %s: %w", path, err)
	}
	return writeToolkit(w, path, extra)
}

// writeToolkit writes weights in the toolkit's format: tensors prompts, gates, visual.w{i}/visual.b{i}, with the
// config and the model's shape as JSON metadata.
func writeToolkit(w *Weights, path string, extra map[string]string) error {
	if w.NumHeads < 1 {
		return fmt.Errorf("adapter: saving %s: the model's head count is unknown", path)
	}
	cfgJSON, err := json.Marshal(w.Config)
	if err != nil {
		return fmt.Errorf("adapter: saving %s: %w", path, err)
	}
	shapeJSON, _ := json.Marshal(fileShape{NumLayers: w.NumLayers, Dim: w.Dim, NumHeads: w.NumHeads})
	meta := map[string]string{"format": FormatTag, "config": string(cfgJSON), "model": string(shapeJSON)}
	for k, v := range extra {
		if _, reserved := meta[k]; !reserved {
			meta[k] = v
		}
	}
	gshape := []int{w.Config.Layers}
	if w.Config.Gate.perHead() {
		gshape = append(gshape, w.NumHeads)
	}
	ts := []safetensors.Tensor{
		safetensors.Float32Tensor("prompts", []int{w.Config.Layers, w.Config.PromptLen, w.Dim}, w.Prompts, safetensors.F32),
		safetensors.Float32Tensor("gates", gshape, w.Gates, safetensors.F32),
	}
	for _, t := range w.Visual {
		ts = append(ts, safetensors.Float32Tensor(t.Name, t.Shape, t.Values, safetensors.F32))
	}
	return safetensors.Write(path, ts, meta)
}

// ReadConfig reads an adapter file's config without loading it.
func ReadConfig(path string) (Config, error) {
	f, cfg, _, err := openToolkit(path)
	if err != nil {
		return Config{}, err
	}
	f.Close()
	return cfg, nil
}

// openToolkit opens a file written by Save and reads its metadata; the caller closes the file.
func openToolkit(path string) (*safetensors.File, Config, fileShape, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, Config{}, fileShape{}, err
	}
	cfg, fs, err := readMeta(f)
	if err != nil {
		f.Close()
		return nil, Config{}, fileShape{}, err
	}
	return f, cfg, fs, nil
}

func readMeta(f *safetensors.File) (Config, fileShape, error) {
	var cfg Config
	var fs fileShape
	if f.Metadata["format"] != FormatTag {
		return cfg, fs, fmt.Errorf("adapter %s: not a %s file (metadata format %q)", f.Path, FormatTag, f.Metadata["format"])
	}
	if err := json.Unmarshal([]byte(f.Metadata["config"]), &cfg); err != nil {
		return cfg, fs, fmt.Errorf("adapter %s: malformed config metadata: %w", f.Path, err)
	}
	if err := json.Unmarshal([]byte(f.Metadata["model"]), &fs); err != nil {
		return cfg, fs, fmt.Errorf("adapter %s: malformed model metadata: %w", f.Path, err)
	}
	return cfg, fs, nil
}

// Load reads an adapter saved by Save into new variables of store, checking it fits the model m: its L, K, C
// and head count must agree with the model, and every tensor must have the shape its config implies. Open reads
// every format.
func Load(path string, store *model.Store, m llama.Config) (*Adapter, error) {
	w, err := readToolkit(path)
	if err != nil {
		return nil, err
	}
	return w.NewAdapter(store, m)
}

// readToolkit reads a file written by Save.
func readToolkit(path string) (*Weights, error) {
	f, cfg, fs, err := openToolkit(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg = cfg.Defaults()
	w := &Weights{Config: cfg, NumLayers: fs.NumLayers, Dim: fs.Dim, NumHeads: fs.NumHeads, Source: path,
		origin: map[string]string{"dim": "its metadata (model.dim)", "heads": "its metadata (model.num_heads)", "layers": "its metadata (model.num_layers)"}}
	names := []string{"prompts", "gates"}
	if cfg.Visual != nil {
		for i := 0; i < cfg.Visual.Depth; i++ {
			names = append(names, fmt.Sprintf("visual.w%d", i), fmt.Sprintf("visual.b%d", i))
		}
	}
	gshape := []int{cfg.Layers}
	if cfg.Gate.perHead() {
		gshape = append(gshape, fs.NumHeads)
	}
	var vw []int
	if cfg.Visual != nil {
		vw = cfg.Visual.widths(fs.Dim)
	}
	for i, name := range names {
		vals, shape, err := f.ReadFloat32(name)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", path, err)
		}
		var want []int
		switch {
		case i == 0:
			want = []int{cfg.Layers, cfg.PromptLen, fs.Dim}
		case i == 1:
			want = gshape
		case i%2 == 0: // visual.w{k}: [out, in]
			k := i/2 - 1
			want = []int{vw[k+1], vw[k]}
		default: // visual.b{k}
			want = []int{vw[i/2]}
		}
		if !slices.Equal(shape, want) {
			return nil, fmt.Errorf("adapter %s: tensor %q has shape %v, but L=%d, K=%d, C=%d, H=%d imply %v",
				path, name, shape, cfg.Layers, cfg.PromptLen, fs.Dim, fs.NumHeads, want)
		}
		w.put(i, Tensor{Name: name, Shape: shape, Values: vals})
	}
	if cfg.Version == V2 {
		// V2's terms ride with the extra tensors; their shapes follow the model and are checked when assigned.
		for _, name := range f.Names() {
			if !strings.HasPrefix(name, "v2.") {
				continue
			}
			vals, shape, err := f.ReadFloat32(name)
			if err != nil {
				return nil, fmt.Errorf("adapter %s: %w", path, err)
			}
			w.Visual = append(w.Visual, Tensor{Name: name, Shape: shape, Values: vals})
		}
	}
	return w, nil
}

// assign sets every variable from read(name), checking shapes.
func (a *Adapter) assign(path string, read func(name string) ([]float32, []int, error)) error {
	for i, v := range a.Variables() {
		name := a.tensorNames()[i]
		vals, shape, err := read(name)
		if err != nil {
			return fmt.Errorf("adapter %s: %w", path, err)
		}
		want := v.Shape().Dimensions
		if !slices.Equal(shape, want) {
			if a.IsV2(v) {
				return fmt.Errorf("adapter %s: V2 tensor %q has shape %v, but the model (N=%d layers, C=%d, F=%d, %d·%d q and %d·%d k/v features, V=%d) implies %v",
					path, name, shape, a.Model.NumLayers, a.Model.Dim, a.Model.HiddenDim, a.Model.NumHeads, a.Model.HeadDim,
					a.Model.NumKVHeads, a.Model.HeadDim, a.Model.VocabSize, want)
			}
			return fmt.Errorf("adapter %s: tensor %q has shape %v, but L=%d, K=%d, C=%d, H=%d imply %v",
				path, name, shape, a.Config.Layers, a.Config.PromptLen, a.Model.Dim, a.Model.NumHeads, want)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, want...)); err != nil {
			return fmt.Errorf("adapter %s: %s: %w", path, name, err)
		}
	}
	return nil
}
