package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/results"
)

// TestCommittedZeroShotCacheStillHits: protocols became values, but the committed default run's inputs still key
// its committed zero-shot record, whose scores (written under the old labels) come back by protocol name, equal
// to the baselines the run recorded.
func TestCommittedZeroShotCacheStillHits(t *testing.T) {
	assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	dir := filepath.Join(assets.RepoRoot(), "results", "runs", "smollm2-text-L30-K10-zero-e1-s0-92cd6556")
	const wantKey = "f24befe81f0af560"
	if _, err := os.Stat(filepath.Join(DefaultZeroShotCache(), wantKey+".json")); err != nil {
		t.Skip("committed default run or its zero-shot record absent:", err)
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*string{&cfg.Data.Dir, &cfg.Data.ProblemsFile, &cfg.Data.SplitsFile, &cfg.Model.Path, &cfg.Model.Tokenizer} {
		*p = reroot(*p)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cur resolved
	if err := json.Unmarshal(raw, &struct {
		Digests *map[string]string `json:"digests"`
	}{&cur.Digests}); err != nil {
		t.Fatal(err)
	}
	d, err := loadData(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ex := &runExamples{}
	for _, p := range d.eval {
		ex.evalPIDs = append(ex.evalPIDs, p.PID)
	}
	protocols, err := zeroShotProtocols(cfg.Eval.Mode)
	if err != nil {
		t.Fatal(err)
	}
	if key := zeroShotKey(cfg, cur, ex, protocols); key != wantKey {
		t.Fatalf("zero-shot key %s, want the committed %s", key, wantKey)
	}
	// From the cache: no session is needed.
	got := &results.Summary{}
	if err := addZeroShot(context.Background(), cfg, nil, cur, ex, got, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	rec, err := results.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"letter", "cloze", "cloze-norm"} {
		g, ok1 := got.BaselinePercent(results.ZeroShot, p, "Avg")
		w, ok2 := rec.BaselinePercent(results.ZeroShot, p, "Avg")
		if !ok1 || !ok2 || g != w {
			t.Errorf("zero-shot %s: %v (%v) from the cache, %v (%v) in the run's summary", p, g, ok1, w, ok2)
		}
	}
	// The record keeps the pretrained model's per-problem choices under the old labels too: they come back by
	// protocol name, one per evaluation problem, and score what the record (and the run) says.
	zs, err := readZeroShot(filepath.Join(DefaultZeroShotCache(), wantKey+".json"), wantKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"letter", "cloze", "cloze-norm"} {
		choices := zs.Predictions[p]
		if len(choices) != len(d.eval) {
			t.Errorf("zero-shot %s: %d choices, want %d", p, len(choices), len(d.eval))
			continue
		}
		acc, err := scoreRun(d.eval, choices)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := acc["Avg"], zs.Scores[p]["Avg"]; g.Correct != w.Correct || g.Total != w.Total {
			t.Errorf("zero-shot %s: choices score %d/%d, record %d/%d", p, g.Correct, g.Total, w.Correct, w.Total)
		}
	}
}

// TestBaseEvaluationFillsZeroShot: evaluating the base model stores its per-problem choices in the zero-shot
// cache, scoring what it recorded; a later evaluation of the same inputs agrees with it, and one that contradicts
// a cached score is an error rather than an overwrite.
func TestBaseEvaluationFillsZeroShot(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Eval.Mode = EvalLetter
	cfg.Eval.ZeroShot = true
	cfg.ZeroShotCache = t.TempDir()
	var out bytes.Buffer
	baseDir := filepath.Join(t.TempDir(), "base")
	if _, err := Evaluate(context.Background(), cfg, "", baseDir, &out); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cfg.ZeroShotCache, "*.json"))
	if len(files) != 1 {
		t.Fatalf("%d zero-shot records, want 1", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec zeroShotRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	label := "letter" // new records name protocols by name
	preds := rec.Predictions[label]
	if len(preds) != 24 || rec.Problems != 24 {
		t.Fatalf("record: %d problems, %d choices", rec.Problems, len(preds))
	}
	// The stored choices are the base evaluation's predictions.json.
	base, err := readChoices(filepath.Join(baseDir, PredictionsFile))
	if err != nil {
		t.Fatal(err)
	}
	for pid, c := range base {
		if preds[pid] != c {
			t.Errorf("problem %s: cached choice %d, predictions.json %d", pid, preds[pid], c)
		}
	}
	// A second evaluation agrees with the record.
	if _, err := Evaluate(context.Background(), cfg, "", filepath.Join(t.TempDir(), "base2"), &out); err != nil {
		t.Fatalf("second evaluation: %v", err)
	}
	// A cached score that the evaluation contradicts.
	avg := rec.Scores[label]["Avg"]
	rec.Scores[label]["Avg"] = results.NewScore((avg.Correct+1)%(avg.Total+1), avg.Total)
	rec.Predictions = nil
	if err := results.WriteJSONAtomic(files[0], rec); err != nil {
		t.Fatal(err)
	}
	_, err = Evaluate(context.Background(), cfg, "", filepath.Join(t.TempDir(), "base3"), &out)
	if err == nil || !strings.Contains(err.Error(), "measured now") {
		t.Errorf("contradicted cache: error %v", err)
	}
}
