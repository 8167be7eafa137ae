package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
)

// TestGateHeadThroughPipeline: -gate head (litgpt's formula: one gate per head, used as is) is a flag value, a
// config field kept by the record and the run id, and flows through training, checkpoints (a killed run resumes
// to the uninterrupted run's adapter bytes), the saved adapter and re-evaluation under every protocol. Random
// gate init makes the formula matter from step 0.
func TestGateHeadThroughPipeline(t *testing.T) {
	checkGateHeadSetting(t)

	cfg := smallConfig(t)
	cfg.Adapter.Gate, cfg.Adapter.Init = adapter.GateHead, adapter.InitRandom
	cfg.Train.Epochs = 1
	var out bytes.Buffer
	full, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	saved := filepath.Join(full.Dir, AdapterFile)
	ac, err := adapter.ReadConfig(saved)
	if err != nil || ac.Gate != adapter.GateHead {
		t.Fatalf("saved adapter: gate %q, %v", ac.Gate, err)
	}
	raw, err := os.ReadFile(filepath.Join(full.Dir, ConfigFile))
	if err != nil || !strings.Contains(string(raw), `"gate": "head"`) {
		t.Errorf("config.json does not record gate head (%v)", err)
	}
	w, _, err := adapter.Read(full.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Gates) != w.Config.Layers*w.NumHeads {
		t.Errorf("saved gates: %d values for L=%d, H=%d (want one per head)", len(w.Gates), w.Config.Layers, w.NumHeads)
	}
	// Re-evaluation of the saved adapter reproduces the run's scores under every protocol.
	s, err := Evaluate(context.Background(), cfg, full.Dir, filepath.Join(t.TempDir(), "eval"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Primary != full.Summary.Primary || len(s.Scores) != len(full.Summary.Scores) || len(s.Scores) < 2 {
		t.Errorf("re-evaluation protocols %q %d, run %q %d", s.Primary, len(s.Scores), full.Summary.Primary, len(full.Summary.Scores))
	}
	for k, v := range full.Summary.Scores {
		if s.Scores[k]["Avg"] != v["Avg"] {
			t.Errorf("%s: re-evaluation %v, run %v", k, s.Scores[k]["Avg"], v["Avg"])
		}
	}
	// Killed after a checkpoint and resumed: the same adapter as the uninterrupted run.
	cfg2 := cfg
	cfg2.RunsDir = t.TempDir()
	cfg2.Eval.Mode = EvalLetter
	killedRun(t, cfg2, 3)
	resumed, err := Run(context.Background(), cfg2, &out)
	if err != nil {
		t.Fatal(err)
	}
	// Tensor for tensor (the files' metadata differ: cfg2's run id, with letter-only evaluation, is another).
	rw, _, err := adapter.Read(resumed.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rw.Prompts, w.Prompts) || !slices.Equal(rw.Gates, w.Gates) {
		t.Error("resumed head-gate run's adapter differs from the uninterrupted run's")
	}
}

// checkGateHeadSetting: -gate head is accepted (and -gate sigmoid refused), changes the run id and survives
// config.json's round trip.
func checkGateHeadSetting(t *testing.T) {
	t.Helper()
	c := Stories260K()
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	c.Flags(fs)
	if err := fs.Parse([]string{"-gate", "head"}); err != nil || c.Adapter.Gate != adapter.GateHead {
		t.Fatalf("-gate head: %v, gate %q", err, c.Adapter.Gate)
	}
	if err := fs.Parse([]string{"-gate", "sigmoid"}); err == nil {
		t.Error("-gate sigmoid accepted")
	}
	id, err := c.ID()
	base, err2 := Stories260K().ID()
	if err != nil || err2 != nil || id == base {
		t.Errorf("-gate head: id %q (%v), default %q (%v): want a different id", id, err, base, err2)
	}
	var back Config
	if data, err := json.Marshal(c); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(data, &back); err != nil || back.Adapter.Gate != adapter.GateHead {
		t.Errorf("config.json round trip: gate %q, %v", back.Adapter.Gate, err)
	}
}
