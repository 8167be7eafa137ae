package pipeline

import (
	"fmt"
	"path/filepath"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/results"
)

// GatesFigure is the base name of a run's gate figure (gates.png, gates.svg): the final gates of its adapter and
// their course over training.
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
	return results.GatePanel{Title: fmt.Sprintf("%s\nfinal %s, %s-init", title, what, g.Init), Layers: g.Layers, Values: g.Values}, nil
}

// saveGatesFigure draws a run's gates into its folder (gates.png, gates.svg): the final gates (layers × heads)
// and, when metrics.jsonl logged them, their course over training (layers × steps, mean |gate| over heads), on one
// color scale. It returns the final gates for summary.json.
func saveGatesFigure(dir, id string) (*results.GateValues, error) {
	g, err := adapter.ReadGates(filepath.Join(dir, AdapterFile))
	if err != nil {
		return nil, err
	}
	p, err := GatePanel(dir, id)
	if err != nil {
		return nil, err
	}
	panels := []results.GatePanel{p}
	tp, ok, err := GateTracePanel(dir, "")
	if err != nil {
		return nil, err
	}
	if ok {
		panels = append(panels, tp)
	}
	f, err := results.GatesFigure(panels)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	if err := f.Save(filepath.Join(dir, GatesFigure)); err != nil {
		return nil, err
	}
	return &results.GateValues{Mode: string(g.Mode), Layers: g.Layers, Values: g.Values}, nil
}

// GateTracePanel reads a run folder's gates over training (metrics.jsonl) as a figure panel: per adapted layer,
// the mean |tanh(gate)| (|gate| for the other gate modes) over heads at each step that logged them. ok is false
// for a run whose log has no gates (recorded before they were logged).
func GateTracePanel(dir, title string) (p results.GatePanel, ok bool, err error) {
	ms, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile))
	if err != nil {
		return p, false, fmt.Errorf("run %s: %w", dir, err)
	}
	if !hasGates(ms) {
		return p, false, nil
	}
	g, err := adapter.ReadGates(filepath.Join(dir, AdapterFile))
	if err != nil {
		return p, false, err
	}
	what := "|tanh(gate)|"
	if g.Mode != adapter.GateHeadTanh {
		what = "|gate|"
	}
	if title != "" {
		title += ": "
	}
	if p, err = results.GateTrace(fmt.Sprintf("%smean %s over heads, by step", title, what), g.Layers, ms); err != nil {
		return p, false, fmt.Errorf("run %s: %w", dir, err)
	}
	return p, true, nil
}

// hasGates reports whether a metrics log has gates on any line (runs recorded before they were logged have none).
func hasGates(ms []results.Metric) bool {
	for _, m := range ms {
		if m.Gates != nil {
			return true
		}
	}
	return false
}
