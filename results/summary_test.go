package results

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleSummary(id string) *Summary {
	acc := AccuracyTable{}
	acc.Set("NAT", 3, 4)
	acc.Set("TXT", 1, 3)
	acc.Set("G1-6", 4, 6)
	acc.Set("Avg", 5, 8)
	acc.Set("SOC", 0, 0) // no social-science problem: n/a, absent
	return &Summary{
		RunID:           id,
		Complete:        true,
		Split:           "fold 0/5",
		Primary:         "letter",
		Scores:          map[string]AccuracyTable{"letter": acc},
		Timings:         Timings{TrainSeconds: 12.5, EvalSeconds: 3.25, TokensPerSecond: 812.75},
		Versions:        CurrentVersions(),
		Backend:         "go (go:ops_sequential)",
		Device:          "2-core CPU",
		FinalTrainLoss:  Float(0.125),
		TrainableParams: 1_229_760,
	}
}

func TestScoreAndAccuracyTable(t *testing.T) {
	s := NewScore(3, 4)
	if s.Accuracy != 75 {
		t.Errorf("3/4 = %v%%, want 75", s.Accuracy)
	}
	acc := AccuracyTable{}
	acc.Set("IMG", 2, 3)
	if v, ok := acc.Percent("IMG"); !ok || v != 200.0/3 {
		t.Errorf("IMG = %v, %v", v, ok)
	}
	acc.Set("IMG", 0, 0)
	if _, ok := acc.Percent("IMG"); ok {
		t.Error("a category set with total 0 must be n/a")
	}
	for name, bad := range map[string]AccuracyTable{
		"zero total":     {"NAT": {Correct: 0, Total: 0, Accuracy: 0}},
		"correct>total":  {"NAT": {Correct: 5, Total: 4, Accuracy: 125}},
		"wrong accuracy": {"NAT": {Correct: 1, Total: 4, Accuracy: 30}},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "NAT") {
			t.Errorf("%s: Validate() = %v, want an error naming NAT", name, err)
		}
	}
}

func TestSummaryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := sampleSummary("run-a")
	type cfg struct {
		Layers int     `json:"layers"`
		LR     float64 `json:"lr"`
	}
	if err := s.SetConfig(cfg{Layers: 30, LR: 9e-3}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSummary(dir, s); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	// n/a categories are absent, never 0; an absent val loss is absent too.
	for _, absent := range []string{`"SOC"`, `"IMG"`, `"final_val_loss"`} {
		if strings.Contains(string(raw), absent) {
			t.Errorf("summary.json contains %s:\n%s", absent, raw)
		}
	}
	got, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != dir {
		t.Errorf("Dir = %q, want %q", got.Dir, dir)
	}
	got.Dir = ""
	// Config comes back as the compact JSON that SetConfig stored.
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
	}
	var c cfg
	if err := got.DecodeConfig(&c); err != nil || c.Layers != 30 || c.LR != 9e-3 {
		t.Errorf("DecodeConfig = %+v, %v", c, err)
	}
	if got.Versions.GoMLX != GoMLXVersion || !strings.HasPrefix(got.Versions.Go, "go") {
		t.Errorf("versions %+v", got.Versions)
	}
}

func TestSummaryErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadSummary(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing summary: err = %v, want fs.ErrNotExist", err)
	}
	s := sampleSummary("")
	if err := WriteSummary(dir, s); err == nil {
		t.Error("a summary without run id was written")
	}
	s = sampleSummary("x")
	s.Scores["letter"]["NO"] = Score{} // a zero score: must be rejected, n/a is absence
	if err := WriteSummary(dir, s); err == nil || !strings.Contains(err.Error(), "NO") {
		t.Errorf("zero-total score: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SummaryFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("an invalid summary reached the disk")
	}
	// An inconsistent file written by hand is reported with its path.
	path := filepath.Join(dir, SummaryFile)
	if err := os.WriteFile(path, []byte(`{"run_id":"h","accuracy":{"NAT":{"correct":1,"total":2,"accuracy":60}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSummary(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("inconsistent summary: err = %v, want one naming %s", err, path)
	}
	if err := os.WriteFile(path, []byte(`{"run_id":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSummary(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated summary: err = %v, want one naming %s", err, path)
	}
}

func TestListRuns(t *testing.T) {
	root := t.TempDir()
	if runs, err := ListRuns(filepath.Join(root, "absent")); err != nil || runs != nil {
		t.Errorf("absent root: %v, %v", runs, err)
	}
	for _, id := range []string{"b-run", "a-run"} {
		d := filepath.Join(root, id)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteSummary(d, sampleSummary(id)); err != nil {
			t.Fatal(err)
		}
	}
	// A run that never wrote its summary, and a stray file: both skipped.
	if err := os.Mkdir(filepath.Join(root, "partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs, err := ListRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].RunID != "a-run" || runs[1].RunID != "b-run" {
		t.Fatalf("runs = %v", runs)
	}
	if runs[1].Dir != filepath.Join(root, "b-run") {
		t.Errorf("Dir = %q", runs[1].Dir)
	}
	bad := filepath.Join(root, "partial", SummaryFile)
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListRuns(root); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt summary: err = %v, want one naming %s", err, bad)
	}
}
