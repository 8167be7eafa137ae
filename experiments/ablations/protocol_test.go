package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/results"
)

// longestOption is a protocol defined only in this test file: it chooses the option with the longest text (ties:
// the first). It needs no model, so its accuracy can be computed here independently of the pipeline.
type longestOption struct{}

func (longestOption) Name() string        { return "test-longest" }
func (longestOption) Description() string { return "the longest option text, a test protocol" }

func (longestOption) Evaluate(ctx context.Context, env *evaluate.Env) (*evaluate.Result, error) {
	res := &evaluate.Result{Choices: map[string]int{}, Scores: map[string][]float64{}}
	for _, p := range env.Problems {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Choices[p.PID], res.Scores[p.PID] = longest(p)
	}
	return res, nil
}

func longest(p *scienceqa.Problem) (int, []float64) {
	best, sc := 0, make([]float64, len(p.Choices))
	for i, c := range p.Choices {
		if sc[i] = float64(len(c)); sc[i] > sc[best] {
			best = i
		}
	}
	return best, sc
}

// The registration line: nothing else in the toolkit names the protocol.
func init() { evaluate.Register(longestOption{}) }

// TestRegisteredProtocolFlowsThrough: a protocol registered in a test file, named first in -eval, becomes the
// run's primary protocol in summary.json (scores and its zero-shot baseline), a row of the run's table, and what
// the ablation report's table and runs.json read, with no other edit.
func TestRegisteredProtocolFlowsThrough(t *testing.T) {
	problems := assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	dir := t.TempDir()
	args := append(tinyArgs(t, dir), "-sweep", "tiny-layers", "-seeds", "1", "-eval", "test-longest,letter",
		"-zero-shot", "-zero-shot-cache", filepath.Join(dir, "zero-shot"))
	if err := run(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	o, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	plans := planAll(t, o)
	r := plans[0][0]
	id, err := r.Config.ID()
	if err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(r.Config.RunsDir, id)
	s, err := results.ReadSummary(runDir)
	if err != nil {
		t.Fatal(err)
	}
	wantAvg := longestAccuracy(t, problems, runDir)
	got, ok := s.Scores["test-longest"].Percent("Avg")
	if s.Primary != "test-longest" || !ok || math.Abs(got-wantAvg) > 1e-9 || s.Scores["letter"] == nil {
		t.Fatalf("summary: primary %q, test-longest Avg %v (want %v), letter %v", s.Primary, got, wantAvg, s.Scores["letter"])
	}
	if zs, ok := s.BaselinePercent(results.ZeroShot, "test-longest", "Avg"); !ok || math.Abs(zs-wantAvg) > 1e-9 {
		t.Errorf("zero-shot test-longest = %v, %v; want %v (the protocol ignores the model)", zs, ok, wantAvg)
	}
	table, err := os.ReadFile(filepath.Join(runDir, "table.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{s.RunID + " (test-longest)", s.RunID + " (letter)", "zero-shot, test-longest (same problems)",
		"test-longest: the longest option text, a test protocol"} {
		if !strings.Contains(string(table), row) {
			t.Errorf("run table lacks %q:\n%s", row, table)
		}
	}
	// The report reads the primary protocol; runs.json records letter scoring beside it.
	var recs []struct {
		ValAcc    float64 `json:"val_acc"`
		Metric    string  `json:"metric"`
		LetterAcc float64 `json:"letter_acc"`
		ZeroShot  float64 `json:"zero_shot_acc"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "tiny-layers", "runs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	letter, _ := s.Scores["letter"].Percent("Avg")
	if len(recs) != 2 || recs[0].Metric != "test-longest" || recs[0].LetterAcc != letter || recs[0].ZeroShot != wantAvg {
		t.Fatalf("runs.json: %+v; want metric test-longest, letter %v, zero-shot %v", recs, letter, wantAvg)
	}
	for _, rec := range recs {
		if math.Abs(rec.ValAcc-wantAvg) > 1e-9 {
			t.Errorf("report val_acc %v, want test-longest's %v (every run evaluates the same problems)", rec.ValAcc, wantAvg)
		}
	}
	report, err := os.ReadFile(filepath.Join(dir, "out", "tiny-layers", "table.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if note := fmt.Sprintf("Zero-shot (the pretrained model, no adapter, same problems): test-longest %.2f", wantAvg); !strings.Contains(string(report), note) {
		t.Errorf("report lacks %q:\n%s", note, report)
	}
}

// longestAccuracy is the accuracy test-longest should have on the problems the run in runDir evaluated (its
// predictions.json names them), scored independently of the run from the problems file.
func longestAccuracy(t *testing.T, problems, runDir string) float64 {
	t.Helper()
	ds, err := scienceqa.LoadOfficial(scienceqa.Options{Problems: problems, NoImageCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	preds, err := scienceqa.ReadPredictions(filepath.Join(runDir, "predictions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var evaluated []*scienceqa.Problem
	want := map[string]int{}
	for pid := range preds {
		p, ok := ds.Get(pid)
		if !ok {
			t.Fatalf("predictions.json names unknown pid %s", pid)
		}
		evaluated = append(evaluated, p)
		want[pid], _ = longest(p)
	}
	exp, err := scienceqa.Score(evaluated, want)
	if err != nil {
		t.Fatal(err)
	}
	avg, _ := exp.Percent("Avg")
	return avg
}
