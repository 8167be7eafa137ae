package results

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestGatesFigure(t *testing.T) {
	zero := GatePanel{Title: "zero-init", Layers: []int{2, 3, 4}, Values: [][]float64{{0.1, -0.2}, {0, 0.05}, {0.3, -0.01}}}
	rnd := GatePanel{Title: "random-init", Layers: []int{2, 3, 4}, Values: [][]float64{{-0.6, 0.2}, {0.4, 0.5}, {0.1, 0}}}
	f, err := GatesFigure([]GatePanel{zero, rnd})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Plots) != 2 {
		t.Fatalf("%d panels", len(f.Plots))
	}
	svg, err := f.Encode("svg")
	if err != nil {
		t.Fatal(err)
	}
	// One color scale for both panels, symmetric about the largest |value| (0.6): its ends are in the legend.
	for _, want := range []string{"zero-init", "random-init", "+0.600", "-0.600", "+0.000", "layer", "head"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if png, err := f.Encode("png"); err != nil || len(png) < 1000 {
		t.Errorf("png: %d bytes, %v", len(png), err)
	}
	for name, bad := range map[string]GatePanel{
		"ragged":    {Title: "r", Layers: []int{0, 1}, Values: [][]float64{{1, 2}, {3}}},
		"rows":      {Title: "n", Layers: []int{0}, Values: [][]float64{{1}, {2}}},
		"nan":       {Title: "nan", Layers: []int{0}, Values: [][]float64{{math.NaN()}}},
		"no values": {Title: "e"},
	} {
		if _, err := GatesFigure([]GatePanel{bad}); err == nil || !strings.Contains(err.Error(), "gates") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if _, err := GatesFigure(nil); err == nil {
		t.Error("no panels: no error")
	}
}

// TestGatesFigureLayout: the legend stands beside the map, so the layer axis ends at the top layer (no room raised
// above it for the legend), and layer ticks are whole numbers.
func TestGatesFigureLayout(t *testing.T) {
	layers := make([]int, 30)
	values := make([][]float64, 30)
	for i := range layers {
		layers[i], values[i] = i, []float64{0.1, -0.1}
	}
	f, err := GatesFigure([]GatePanel{{Title: "a", Layers: layers, Values: values}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.SideLegend[0] || f.Plots[0].Y.Max != 29.5 {
		t.Errorf("side legend %v, y max %g; want true, 29.5", f.SideLegend[0], f.Plots[0].Y.Max)
	}
	var labels []string
	for _, tk := range layerTicks(-0.5, 29.5) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, ","); got != "0,5,10,15,20,25" {
		t.Errorf("layer tick labels %s", got)
	}
	if got := len(layerTicks(1.5, 4.5)); got != 3 {
		t.Errorf("%d ticks for layers 2-4", got)
	}
}
