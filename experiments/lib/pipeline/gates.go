package pipeline

import (
	"fmt"
	"path/filepath"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/results"
)

// GatesFigure is the base name of a run's gate figure (gates.png, gates.svg): the final gates of its adapter.
const GatesFigure = "gates"

// GatePanel reads the final gates of a run's adapter (a run folder or an adapter.safetensors) as a figure panel:
// tanh(gate) per adapted layer and head for head-tanh gates, the raw gate per head (head gates) or per layer (layer
// gates) otherwise.
func GatePanel(path, title string) (results.GatePanel, error) {
	if filepath.Ext(path) != ".safetensors" {
		path = filepath.Join(path, AdapterFile)
	}
	g, err := adapter.ReadGates(path)
	if err != nil {
		return results.GatePanel{}, err
	}
	what := "tanh(gate)"
	if g.Mode != adapter.GateHeadTanh {
		what = "gate"
	}
	return results.GatePanel{Title: fmt.Sprintf("%s: final %s, %s-init", title, what, g.Init), Layers: g.Layers, Values: g.Values}, nil
}

// saveGatesFigure draws a run's final gates into its folder (gates.png, gates.svg).
func saveGatesFigure(dir, id string) error {
	p, err := GatePanel(dir, id)
	if err != nil {
		return err
	}
	f, err := results.GatesFigure([]results.GatePanel{p})
	if err != nil {
		return fmt.Errorf("run %s: %w", dir, err)
	}
	return f.Save(filepath.Join(dir, GatesFigure))
}
