package results

import (
	"errors"
	"fmt"
	"math"
)

// GateValues are an adapter's gates as they are applied (tanh(gate) for head-tanh gates): Values[i][h] belongs to
// model layer Layers[i] (the adapted layers, lowest first) and head h (one column for per-layer gates).
type GateValues struct {
	Mode   string      `json:"mode"`
	Layers []int       `json:"layers"`
	Values [][]float64 `json:"values"`
}

// GateTrace is the gates over training as a GatesFigure panel: for each adapted layer (layers, the model's layer
// numbers, one per row of the logged gates) the mean over heads of |gate| at every step line of ms that logged
// gates (Metric.Gates), one column per such step. The mean of absolute values, because heads of one layer may
// move in opposite directions and a signed mean would hide them.
func GateTrace(title string, layers []int, ms []Metric) (GatePanel, error) {
	p := GatePanel{Title: title, Layers: layers, XLabel: "step", Values: make([][]float64, len(layers))}
	for _, m := range ms {
		if m.Kind != KindStep || m.Gates == nil || m.Step == nil {
			continue
		}
		if len(m.Gates) != len(layers) {
			return GatePanel{}, fmt.Errorf("results: gates of step %d: %d layers, want %d", *m.Step, len(m.Gates), len(layers))
		}
		if n := len(p.XValues); n > 0 && float64(*m.Step) <= p.XValues[n-1] {
			return GatePanel{}, fmt.Errorf("results: gates of step %d logged after step %g", *m.Step, p.XValues[n-1])
		}
		p.XValues = append(p.XValues, float64(*m.Step))
		for i, row := range m.Gates {
			if len(row) == 0 {
				return GatePanel{}, fmt.Errorf("results: gates of step %d: layer %d has none", *m.Step, layers[i])
			}
			s := 0.0
			for _, g := range row {
				s += math.Abs(float64(g))
			}
			p.Values[i] = append(p.Values[i], s/float64(len(row)))
		}
	}
	if len(p.XValues) == 0 {
		return GatePanel{}, errors.New("results: no step line logged gates")
	}
	return p, nil
}
