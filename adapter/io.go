package adapter

import (
	"encoding/json"
	"fmt"
	"slices"

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
	cfgJSON, err := json.Marshal(a.Config)
	if err != nil {
		return fmt.Errorf("adapter: saving %s: %w", path, err)
	}
	shapeJSON, _ := json.Marshal(fileShape{NumLayers: a.Model.NumLayers, Dim: a.Model.Dim, NumHeads: a.Model.NumHeads})
	meta := map[string]string{"format": FormatTag, "config": string(cfgJSON), "model": string(shapeJSON)}
	for k, v := range extra {
		if _, reserved := meta[k]; !reserved {
			meta[k] = v
		}
	}
	var ts []safetensors.Tensor
	for i, v := range a.Variables() {
		t, err := v.Value()
		if err != nil {
			return fmt.Errorf("adapter: saving %s: %w", path, err)
		}
		vals, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return fmt.Errorf("adapter: saving %s: %s: %w", path, v.Name(), err)
		}
		ts = append(ts, safetensors.Float32Tensor(a.tensorNames()[i], t.Shape().Dimensions, vals, safetensors.F32))
	}
	return safetensors.Write(path, ts, meta)
}

// ReadConfig reads an adapter file's config without loading it.
func ReadConfig(path string) (Config, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	cfg, _, err := readMeta(f)
	return cfg, err
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
// and head count must agree with the model, and every tensor must have the shape its config implies.
func Load(path string, store *model.Store, m llama.Config) (*Adapter, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, fs, err := readMeta(f)
	if err != nil {
		return nil, err
	}
	if fs.Dim != m.Dim || fs.NumHeads != m.NumHeads {
		return nil, fmt.Errorf("adapter %s: made for a model with C=%d and %d heads; this model has C=%d and %d heads",
			path, fs.Dim, fs.NumHeads, m.Dim, m.NumHeads)
	}
	if cfg.Layers > m.NumLayers {
		return nil, fmt.Errorf("adapter %s: adapts L=%d layers but the model has only %d", path, cfg.Layers, m.NumLayers)
	}
	if fs.NumLayers != m.NumLayers {
		return nil, fmt.Errorf("adapter %s: made for a %d-layer model (its prompts belong to layers %d..%d); this model has %d layers",
			path, fs.NumLayers, fs.NumLayers-cfg.Layers, fs.NumLayers-1, m.NumLayers)
	}
	a, err := New(store, cfg, m)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", path, err)
	}
	if err := a.assign(f.Path, func(name string) ([]float32, []int, error) { return f.ReadFloat32(name) }); err != nil {
		return nil, err
	}
	return a, nil
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
