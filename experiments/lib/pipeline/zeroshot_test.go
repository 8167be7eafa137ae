package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
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
	if err := addZeroShot(context.Background(), cfg, nil, cur, ex, got, io.Discard); err != nil {
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
}
