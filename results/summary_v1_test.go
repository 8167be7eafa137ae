package results

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// TestReadVersion1Summary: a summary written before protocols were values reads as the new shape: the accuracy
// under the primary protocol of its eval_mode, the other scorings beside it, zero-shot baselines by protocol and
// the others under AnyProtocol; written again, it reads back the same.
func TestReadVersion1Summary(t *testing.T) {
	dir := t.TempDir()
	v1 := `{"run_id": "r", "complete": true, "config": {"eval_mode": "letter+cloze", "layers": 30}, "split": "fold 4 of 5 (seed 0)",
  "accuracy": {"Avg": {"correct": 1, "total": 4, "accuracy": 25}},
  "scorings": {"cloze": {"Avg": {"correct": 3, "total": 4, "accuracy": 75}}},
  "timings": {}, "versions": {"go": "go1", "gomlx": "v0"},
  "baselines": {"majority class (B)": {"Avg": 50}, "zero-shot, cloze scoring": {"Avg": 60}, "zero-shot, letter scoring": {"Avg": 20},
    "zero-shot, cloze scoring, per-token mean": {"Avg": 55}}}`
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Primary != "letter" || s.Scores["letter"]["Avg"].Correct != 1 || s.Scores["cloze"]["Avg"].Correct != 3 || len(s.Scores) != 2 {
		t.Errorf("scores: primary %q, %+v", s.Primary, s.Scores)
	}
	want := map[string]map[string]map[string]float64{
		"majority class (B)": {AnyProtocol: {"Avg": 50}},
		ZeroShot:             {"cloze": {"Avg": 60}, "letter": {"Avg": 20}, "cloze-norm": {"Avg": 55}},
	}
	if !reflect.DeepEqual(s.Baselines, want) {
		t.Errorf("baselines %v, want %v", s.Baselines, want)
	}
	if v, ok := s.BaselinePercent("majority class (B)", "cloze", "Avg"); !ok || v != 50 {
		t.Errorf("a protocol-independent baseline reads %v, %v for cloze", v, ok)
	}
	if got := s.Protocols(); !reflect.DeepEqual(got, []string{"letter", "cloze"}) {
		t.Errorf("protocols %v", got)
	}
	// Written back in the new shape, it reads the same.
	out := t.TempDir()
	if err := WriteSummary(out, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSummary(out)
	if err != nil {
		t.Fatal(err)
	}
	back.Dir, s.Dir = "", ""
	if !reflect.DeepEqual(back, s) {
		t.Errorf("v2 round trip:\n got %+v\nwant %+v", back, s)
	}
	for mode, primary := range map[string]string{"both": "generate", "all": "generate", "generate": "generate", "cloze": "cloze", "letter": "letter", "": "letter"} {
		if got := v1Primary(mode); got != primary {
			t.Errorf("v1Primary(%q) = %q, want %q", mode, got, primary)
		}
	}
}

// TestCommittedSummariesRead: every committed run's summary reads, with its primary protocol's scores.
func TestCommittedSummariesRead(t *testing.T) {
	runs, err := ListRuns(filepath.Join(assets.RepoRoot(), "results", "runs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) == 0 {
		t.Skip("no committed runs")
	}
	for _, s := range runs {
		// Runs before 2026-12-07 are letter-primary; the default run since then is cloze-primary.
		if (s.Primary != "letter" && s.Primary != "cloze") || s.Scores[s.Primary] == nil || s.PrimaryAccuracy()["Avg"].Total == 0 {
			t.Errorf("%s: primary %q with %v", s.Dir, s.Primary, s.PrimaryAccuracy()["Avg"])
		}
	}
	t.Logf("%d committed summaries read", len(runs))
}
