package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/results"
)

// TestBaseEvaluationFillsZeroShot: evaluating the base model stores its per-problem choices in the zero-shot
// cache, scoring what it recorded; a later evaluation of the same inputs agrees with it, and one that contradicts
// a cached score is an error rather than an overwrite.
func TestBaseEvaluationFillsZeroShot(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Eval.Mode = EvalLetter
	cfg.Eval.ZeroShot = true
	cfg.Eval.ZeroShotCache = t.TempDir()
	var out bytes.Buffer
	baseDir := filepath.Join(t.TempDir(), "base")
	if _, err := Evaluate(context.Background(), cfg, "", baseDir, &out); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cfg.Eval.ZeroShotCache, "*.json"))
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
	label := ScoringLabel("letter")
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
