package pipeline

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/results"
)

func TestGateStep(t *testing.T) {
	var logged []int
	for s := 1; s <= 1000; s++ {
		if gateStep(s, 1000) {
			logged = append(logged, s)
		}
	}
	// every 20th step, and the first: 51 lines; the last (1000) is one of the 20ths.
	if len(logged) != 51 || logged[0] != 1 || logged[1] != 20 || logged[50] != 1000 {
		t.Errorf("1000 steps: %d lines logged gates (%v…)", len(logged), logged[:min(3, len(logged))])
	}
	if !gateStep(7, 7) || !gateStep(3, 7) || !gateStep(1, 130) || !gateStep(130, 130) || gateStep(3, 130) || !gateStep(4, 130) {
		t.Error("gateStep: first, last or evenly spaced steps wrong")
	}
}

// TestGatesOverTraining: a small run logs the gates on its step lines; the last line's are the saved adapter's
// (tanh applied), as are summary.json's final gates; training moved them; gates.png shows both panels.
func TestGatesOverTraining(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Eval.Mode = EvalLetter
	res, _ := mustRun(t, cfg)
	ms, err := results.ReadMetrics(filepath.Join(res.Dir, results.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var steps []results.Metric
	for _, m := range ms {
		if m.Kind == results.KindStep {
			steps = append(steps, m)
		}
	}
	if len(steps) < 3 {
		t.Fatalf("%d step lines", len(steps))
	}
	for _, m := range steps { // fewer than gateLines steps: every line logs the gates
		if len(m.Gates) != cfg.Adapter.Layers {
			t.Fatalf("step %d: gates of %d layers, want %d", *m.Step, len(m.Gates), cfg.Adapter.Layers)
		}
	}
	g, err := adapter.ReadGates(filepath.Join(res.Dir, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	first, last := steps[0].Gates, steps[len(steps)-1].Gates
	moved := false
	for i := range g.Values {
		for h, v := range g.Values[i] {
			if math.Abs(float64(last[i][h])-v) > 1e-6*max(1, math.Abs(v)) {
				t.Errorf("layer %d head %d: last logged gate %g, saved adapter %g", g.Layers[i], h, last[i][h], v)
			}
			moved = moved || first[i][h] != last[i][h]
		}
	}
	if !moved {
		t.Error("the logged gates did not change over training")
	}
	sum, err := results.ReadSummary(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	fg := sum.FinalGates
	if fg == nil || fg.Mode != string(g.Mode) || len(fg.Values) != len(g.Values) || fg.Layers[0] != g.Layers[0] {
		t.Fatalf("summary.json final gates %+v, adapter %+v", fg, g)
	}
	for i := range g.Values {
		for h, v := range g.Values[i] {
			if fg.Values[i][h] != v {
				t.Errorf("summary gate [%d][%d] %g, adapter %g", i, h, fg.Values[i][h], v)
			}
		}
	}
	svg, err := os.ReadFile(filepath.Join(res.Dir, GatesFigure+".svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"final tanh(gate)", "mean |tanh(gate)| over heads, by step", ">step<"} {
		if !bytes.Contains(svg, []byte(w)) {
			t.Errorf("gates.svg lacks %q", w)
		}
	}
}
