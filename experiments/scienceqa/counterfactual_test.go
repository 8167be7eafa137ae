package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline/pipelinetest"
	"github.com/adapterlab/llama-adapter/results"
)

// TestCounterfactualEndToEnd trains a small multimodal stories260K run with a random-weight vision tower, runs
// `counterfactual` on it and checks the saved report against the data: the problems are exactly the IMG problems
// of the run's evaluation set (up to -eval-limit), every accuracy and difference in the report and in its table
// is the one recomputed here from the per-problem choices and the answer key, the shuffled features are another
// problem's, and the true-image choices agree with the run's recorded predictions.
func TestCounterfactualEndToEnd(t *testing.T) {
	c := pipelinetest.Stories260K(t)
	assets.Require(t, c.Model.Path)
	assets.Require(t, c.Data.Dir)
	c.RunsDir = t.TempDir()
	c.Data.TrainLimit, c.Data.EvalLimit = 24, 48
	c.Train.Epochs, c.Train.MaxLen = 1, 192
	c.Vision.Modality, c.Vision.CLIP, c.Eval.Mode = pipeline.Multimodal, "random", pipeline.EvalScores
	cache := t.TempDir()
	c.FeatureCache = cache
	var log bytes.Buffer
	res, err := pipeline.Run(context.Background(), c, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}

	const limit = 15
	var out, errOut bytes.Buffer
	if code := run([]string{"counterfactual", "-run", res.Dir, "-feature-cache", cache, "-eval-limit", fmt.Sprint(limit), "-resamples", "500"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	t.Log(out.String())
	data, err := os.ReadFile(filepath.Join(res.Dir, pipeline.CounterfactualFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.CounterfactualReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(filepath.Join(res.Dir, pipeline.CounterfactualTable))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), string(table)) {
		t.Errorf("printed table differs from %s", pipeline.CounterfactualTable)
	}

	// The problems: the first IMG problems of the run's evaluation fold, in order.
	eval := evalProblems(t, c)
	var want []*scienceqa.Problem
	for _, p := range eval[:c.Data.EvalLimit] {
		if p.HasImage() && len(want) < limit {
			want = append(want, p)
		}
	}
	if len(want) != limit || len(rep.Problems) != limit {
		t.Fatalf("%d IMG problems in the report, %d expected (%d available)", len(rep.Problems), limit, len(want))
	}
	for i, p := range want {
		if rep.Problems[i] != p.PID || rep.Answers[p.PID] != p.Answer {
			t.Errorf("problem %d: report %s (answer %d), want %s (answer %d)", i, rep.Problems[i], rep.Answers[rep.Problems[i]], p.PID, p.Answer)
		}
		if s := rep.ShuffleSource[p.PID]; s == p.PID || rep.Answers[s] < 0 || s == "" {
			t.Errorf("problem %s shuffled to %q", p.PID, s)
		}
	}

	if len(rep.Protocols) != 3 || rep.Protocols[0].Protocol != "letter" || rep.Protocols[1].Protocol != "cloze" || rep.Protocols[2].Protocol != "cloze-norm" {
		t.Fatalf("protocols %+v, want the run's letter, cloze, cloze-norm", rep.Protocols)
	}
	recorded, err := scienceqa.ReadPredictions(filepath.Join(res.Dir, pipeline.PredictionsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range rep.Protocols {
		correct := map[string]map[string]bool{}
		for _, cond := range pipeline.ImageConditions {
			correct[cond] = map[string]bool{}
			k := 0
			for _, p := range want {
				ch, ok := cp.Choices[cond][p.PID]
				if !ok {
					t.Fatalf("%s, %s: no choice for %s", cp.Protocol, cond, p.PID)
				}
				correct[cond][p.PID] = ch == p.Answer
				if ch == p.Answer {
					k++
				}
			}
			iv, err := results.Wilson(k, limit, results.Z95)
			if err != nil {
				t.Fatal(err)
			}
			a := cp.Accuracy[cond]
			if a.Correct != k || a.Total != limit || a.Percent != 100*float64(k)/limit || a.CI.Lo != 100*iv.Lo || a.CI.Hi != 100*iv.Hi {
				t.Errorf("%s, %s: accuracy %+v, recomputed %d/%d %v", cp.Protocol, cond, a, k, limit, iv)
			}
			cell := fmt.Sprintf("%.2f [%.2f, %.2f]", a.Percent, a.CI.Lo, a.CI.Hi)
			if !strings.Contains(string(table), cell) {
				t.Errorf("%s, %s: table lacks %q", cp.Protocol, cond, cell)
			}
		}
		for _, d := range []struct {
			other string
			got   results.Paired
		}{{pipeline.ImageShuffled, cp.TrueMinusShuffled}, {pipeline.ImageZero, cp.TrueMinusZero}} {
			onlyTrue, onlyOther := 0, 0
			for _, p := range want {
				a, b := correct[pipeline.ImageTrue][p.PID], correct[d.other][p.PID]
				if a && !b {
					onlyTrue++
				} else if b && !a {
					onlyOther++
				}
			}
			diff := 100 * float64(onlyTrue-onlyOther) / limit
			p := results.BinomialTwoSided(onlyTrue, onlyTrue+onlyOther)
			if d.got.Diff != diff || d.got.OnlyA != onlyTrue || d.got.OnlyB != onlyOther || d.got.P != p || d.got.Problems != limit {
				t.Errorf("%s: true − %s %+v, recomputed %+.2f (%d vs %d, p %g)", cp.Protocol, d.other, d.got, diff, onlyTrue, onlyOther, p)
			}
			if d.got.CI.Lo > diff || d.got.CI.Hi < diff {
				t.Errorf("%s: true − %s interval %+v misses the difference %g", cp.Protocol, d.other, d.got.CI, diff)
			}
			cell := fmt.Sprintf("%+.2f [%.2f, %.2f] | %s", d.got.Diff, d.got.CI.Lo, d.got.CI.Hi, strings.TrimPrefix(results.FormatP(p), "= "))
			if !strings.Contains(string(table), cell) {
				t.Errorf("%s: table lacks %q", cp.Protocol, cell)
			}
		}
		if !strings.Contains(string(table), cp.Reading) || cp.Reading == "" {
			t.Errorf("%s: reading %q not in the table", cp.Protocol, cp.Reading)
		}
		// The true condition is the run's own evaluation restricted to IMG problems: only float32 near-ties
		// may flip (the batches pad differently).
		if cp.RecordedCompared != limit || cp.RecordedSame < limit-1 {
			t.Errorf("%s: %d of %d true-image choices equal the run's recorded ones", cp.Protocol, cp.RecordedSame, cp.RecordedCompared)
		}
		if cp.Protocol == "letter" {
			for _, p := range want {
				if cp.Choices[pipeline.ImageTrue][p.PID] != recorded[p.PID] {
					t.Logf("letter: %s chose %d, the run %d", p.PID, cp.Choices[pipeline.ImageTrue][p.PID], recorded[p.PID])
				}
			}
		}
	}

	// A text-only run is refused.
	c.Vision.Modality, c.Vision.CLIP, c.Eval.Mode = pipeline.Text, "", pipeline.EvalLetter
	text, err := pipeline.Run(context.Background(), c, &log)
	if err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"counterfactual", "-run", text.Dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "need a multimodal run") {
		t.Errorf("text-only run: exit %d, %s", code, errOut.String())
	}
}
