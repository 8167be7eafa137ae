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
