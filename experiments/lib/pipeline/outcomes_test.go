package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/results"
)

// defaultRunDir is the committed default run the outside computation used.
var defaultRunDir = filepath.Join(assets.RepoRoot(), "results", "runs", "smollm2-text-L30-K10-zero-e1-s0-92cd6556")

// needRun skips when the committed run or the ScienceQA problems it was scored on are absent.
func needRun(t *testing.T, dir string) {
	t.Helper()
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Skipf("no committed run %s: %v", dir, err)
	}
	if _, err := os.Stat(cfg.Data.ProblemsFile); err != nil {
		t.Skipf("ScienceQA problems of %s absent: %v", dir, err)
	}
}

// TestOutcomesDefaultRunVsZeroShot reproduces the outside computation on the committed files: the default
// run's cloze choices against the pretrained model's on the same 904 problems, 96 problems only the adapter gets
// right against 70 only zero-shot gets right, +2.88 points, exact McNemar p = 0.052.
func TestOutcomesDefaultRunVsZeroShot(t *testing.T) {
	needRun(t, defaultRunDir)
	var r OutcomeReader
	o, err := r.Read(defaultRunDir)
	if err != nil {
		t.Fatal(err)
	}
	if o.Primary != "letter" || len(o.Correct) != 3 || len(o.Correct["cloze"]) != 904 || count(o.Correct["cloze"]) != 485 {
		t.Fatalf("outcomes: primary %s, protocols %d, cloze %d of %d", o.Primary, len(o.Correct), count(o.Correct["cloze"]), len(o.Correct["cloze"]))
	}
	if len(o.Image) != 435 { // scores_cloze.json: IMG total 435
		t.Errorf("%d image problems, want 435", len(o.Image))
	}
	if o.ZeroShot == nil {
		t.Skip("no zero-shot record with per-problem choices matches the default run (scienceqa eval -preset smollm2 -out DIR fills it)")
	}
	if got := count(o.ZeroShot["cloze"]); got != 459 {
		t.Errorf("zero-shot cloze: %d correct, want 459 (summary.json's baseline 50.77 %%)", got)
	}
	s, err := results.NewStratum("seed 0", o.Correct["cloze"], o.ZeroShot["cloze"])
	if err != nil {
		t.Fatal(err)
	}
	p, err := results.PairedDifference([]results.Stratum{s}, results.Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	if p.OnlyA != 96 || p.OnlyB != 70 {
		t.Errorf("discordant: %d only adapter, %d only zero-shot; want 96, 70", p.OnlyA, p.OnlyB)
	}
	if d := p.Diff - 100*26.0/904; d*d > 1e-20 {
		t.Errorf("difference %.4f, want 2.876", p.Diff)
	}
	if d := p.P - 0.0520057549969648; d*d > 1e-20 {
		t.Errorf("p = %.6f, want 0.052006", p.P)
	}
	// The bootstrap interval [0.11, 5.64] within one 1/904 step at 10,000 resamples.
	if p.CI.Lo < -0.12 || p.CI.Lo > 0.23 || p.CI.Hi < 5.52 || p.CI.Hi > 5.76 {
		t.Errorf("interval %v, want ≈ [0.11, 5.64]", p.CI)
	}
}

// TestOutcomesChecksSummary: correctness that disagrees with the run's recorded score is an error (a prediction
// file read under the wrong protocol), and a zero-shot record whose scores are not the run's is not matched.
func TestOutcomesChecksSummary(t *testing.T) {
	needRun(t, defaultRunDir)
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{ConfigFile: ConfigFile, results.SummaryFile: results.SummaryFile, PredictionsFile: PredictionsFile,
		"predictions_cloze.json": "predictions_cloze.json", "predictions_cloze-norm.json": "predictions_cloze.json"}
	for dst, src := range files {
		data, err := os.ReadFile(filepath.Join(defaultRunDir, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	zs := t.TempDir()
	r := OutcomeReader{ZeroShotDir: zs}
	if _, err := r.Read(dir); err == nil || !strings.Contains(err.Error(), "summary.json records") {
		t.Fatalf("cloze choices as cloze-norm: error %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(defaultRunDir, "predictions_cloze-norm.json"))
	if err := os.WriteFile(filepath.Join(dir, "predictions_cloze-norm.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A record for the same problems whose scores differ from the run's baselines.
	rec := zeroShotRecord{Key: "k", Problems: 904, Scores: map[string]results.AccuracyTable{"cloze scoring": {"Avg": results.NewScore(1, 904)}},
		Predictions: map[string]map[string]int{"cloze scoring": {}}}
	if err := results.WriteJSONAtomic(filepath.Join(zs, "k.json"), rec); err != nil {
		t.Fatal(err)
	}
	o, err := r.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.ZeroShot != nil {
		t.Errorf("matched a zero-shot record whose scores are not the run's: %s", o.ZeroShotFile)
	}
}

// TestOutcomesSweepRunZeroShot: a sweep run (the first 300 problems of fold 4) finds its zero-shot choices, from
// its own record or restricted from the record of all 904 problems, scoring its recorded baselines (152, 146 and
// 113 of 300 by cloze, cloze-norm and letter: results/zero-shot/ee8459c7b864920c.json).
func TestOutcomesSweepRunZeroShot(t *testing.T) {
	dir := filepath.Join(assets.RepoRoot(), "results", "runs", "smollm2-text-L30-K10-zero-e1-s0-f5bf038f")
	needRun(t, dir)
	var r OutcomeReader
	o, err := r.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.ZeroShot == nil {
		t.Skip("no zero-shot record with per-problem choices covers the run")
	}
	for proto, want := range map[string]int{"cloze": 152, "cloze-norm": 146, "letter": 113} {
		if c := o.ZeroShot[proto]; len(c) != 300 || count(c) != want {
			t.Errorf("zero-shot %s: %d of %d, want %d of 300", proto, count(c), len(c), want)
		}
	}
	t.Logf("zero-shot from %s (restricted from a larger set: %v)", o.ZeroShotFile, o.ZeroShotSubset)
}

// TestZeroShotRecordsOfOtherProtocolLists: a record with only cloze and cloze-norm (a run scored without letter) and
// the committed record with letter too both match the default run; they complement each other instead of being
// called a disagreement; records that differ on a problem of a shared protocol still are.
func TestZeroShotRecordsOfOtherProtocolLists(t *testing.T) {
	needRun(t, defaultRunDir)
	src := filepath.Join(DefaultZeroShotCache(), "f24befe81f0af560.json")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("committed zero-shot record %s: %v", src, err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"scores", "predictions"} {
		delete(rec[field].(map[string]any), "letter scoring")
	}
	writeRec := func(name string) {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeRec("b.json")
	r := OutcomeReader{ZeroShotDir: dir}
	o, err := r.Read(defaultRunDir)
	if err != nil {
		t.Fatalf("two agreeing records of other protocol lists: %v", err)
	}
	if len(o.ZeroShot) != 3 || count(o.ZeroShot["cloze"]) != 459 {
		t.Fatalf("zero-shot protocols %d, cloze correct %d; want 3 and 459", len(o.ZeroShot), count(o.ZeroShot["cloze"]))
	}
	// The agreement check itself: records are compared on the protocols both hold.
	a := map[string]map[string]bool{"cloze": {"p1": true, "p2": false}, "letter": {"p1": false}}
	b := map[string]map[string]bool{"cloze": {"p1": true, "p2": false}}
	c := map[string]map[string]bool{"cloze": {"p1": true, "p2": true}}
	if !sameOutcomes(a, b) || !sameOutcomes(b, a) {
		t.Error("records agreeing on their shared protocol called different")
	}
	if sameOutcomes(a, c) || sameOutcomes(c, b) {
		t.Error("records differing on a shared problem called the same")
	}
}
