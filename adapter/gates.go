package adapter

import (
	"fmt"
	"math"
)

// Gates are an adapter's gates as they scale the adaption prompts' attention: tanh(gate) per head for head-tanh
// gates (the official code), the raw gate per head for head gates (litgpt's) and per layer for layer gates
// (peft's). Values[i][h] belongs to model layer Layers[i]
// (the adapted, topmost layers, lowest first) and head h (one column for per-layer gates).
type Gates struct {
	Mode   GateMode
	Init   InitScheme
	Layers []int
	Values [][]float64
}

// ReadGates reads the effective gate values of a saved adapter (adapter.safetensors) without a model.
func ReadGates(path string) (*Gates, error) {
	f, cfg, fs, err := openToolkit(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vals, shape, err := f.ReadFloat32("gates")
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", path, err)
	}
	heads := 1
	if cfg.Gate.perHead() {
		heads = fs.NumHeads
	}
	if len(vals) != cfg.Layers*heads {
		return nil, fmt.Errorf("adapter %s: gates of shape %v, want %d layers × %d", path, shape, cfg.Layers, heads)
	}
	g := &Gates{Mode: cfg.Gate, Init: cfg.Init}
	for i := range cfg.Layers {
		g.Layers = append(g.Layers, fs.NumLayers-cfg.Layers+i)
		row := make([]float64, heads)
		for h := range row {
			v := float64(vals[i*heads+h])
			if cfg.Gate == GateHeadTanh {
				v = math.Tanh(v)
			}
			row[h] = v
		}
		g.Values = append(g.Values, row)
	}
	return g, nil
}
