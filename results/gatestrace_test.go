package results

import (
	"bytes"
	"strings"
	"testing"
)

// TestGateTrace: three step lines log gates (2 layers × 2 heads), one step line and the epoch line do not. Each
// column is a logged step, each value the mean |gate| over heads, computed here by hand.
func TestGateTrace(t *testing.T) {
	ms := []Metric{
		{Kind: KindStep, Step: Int(1), Gates: [][]float32{{0.5, -0.25}, {0, 0}}},
		{Kind: KindStep, Step: Int(2)},
		{Kind: KindStep, Step: Int(3), Gates: [][]float32{{-1, 0.5}, {0.125, 0.125}}},
		{Kind: KindEpoch, Step: Int(3), Gates: [][]float32{{9, 9}, {9, 9}}}, // not a step line: ignored
		{Kind: KindStep, Step: Int(4), Gates: [][]float32{{0, -0.75}, {-0.5, 0.25}}},
	}
	p, err := GateTrace("run", []int{6, 7}, ms)
	if err != nil {
		t.Fatal(err)
	}
	wantX := []float64{1, 3, 4}
	want := [][]float64{{0.375, 0.75, 0.375}, {0, 0.125, 0.375}}
	if len(p.XValues) != 3 || p.XLabel != "step" {
		t.Fatalf("columns %v (%q), want steps %v", p.XValues, p.XLabel, wantX)
	}
	for j, x := range wantX {
		if p.XValues[j] != x {
			t.Errorf("column %d at step %g, want %g", j, p.XValues[j], x)
		}
		for i := range want {
			if p.Values[i][j] != want[i][j] {
				t.Errorf("layer %d, step %g: %g, want %g", p.Layers[i], x, p.Values[i][j], want[i][j])
			}
		}
	}
	// Drawn beside a final-gates panel on one scale: the steps label the x axis.
	final := GatePanel{Title: "final", Layers: []int{6, 7}, Values: [][]float64{{0.1, -0.9}, {0.3, 0.2}}}
	f, err := GatesFigure([]GatePanel{final, p})
	if err != nil {
		t.Fatal(err)
	}
	svg, err := f.Encode("svg")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"step", "head", "+0.900"} {
		if !bytes.Contains(svg, []byte(w)) {
			t.Errorf("svg lacks %q", w)
		}
	}
	if _, err := GatesFigure([]GatePanel{{Title: "x", Layers: []int{0}, Values: [][]float64{{1, 2}}, XValues: []float64{1}}}); err == nil {
		t.Error("2 columns with 1 x position accepted")
	}

	for name, bad := range map[string][]Metric{
		"layers": {{Kind: KindStep, Step: Int(1), Gates: [][]float32{{1}}}},
		"order":  {ms[2], ms[0]},
		"none":   {ms[1]},
		"empty":  {{Kind: KindStep, Step: Int(1), Gates: [][]float32{{}, {1}}}},
	} {
		if _, err := GateTrace("run", []int{6, 7}, bad); err == nil || !strings.Contains(err.Error(), "gates") && !strings.Contains(err.Error(), "step") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}
