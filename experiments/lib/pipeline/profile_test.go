package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/results"
)

// TestProfileCoversEveryPhase runs a small run with letter and cloze scoring and a zero-shot baseline measured
// afresh, and checks that summary.json's profile has an entry per phase whose counts agree with what the phase ran.
func TestProfileCoversEveryPhase(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Train.Epochs = 1
	cfg.Eval.Mode = EvalMode("letter,cloze,cloze-norm")
	cfg.Eval.ZeroShot = true
	cfg.ZeroShotCache = t.TempDir()
	res, log := mustRun(t, cfg)
	sum, err := results.ReadSummary(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]results.PhaseProfile{}
	var order []string
	for _, p := range sum.Profile {
		if _, dup := by[p.Phase]; dup {
			t.Errorf("phase %q twice in the profile", p.Phase)
		}
		by[p.Phase] = p
		order = append(order, p.Phase)
	}
	// The validation loss comes after the protocols: with a cloze target it reads the cloze pass (here, a letter
	// target, it runs the loss graph on every problem).
	want := []string{"train", "letter", "cloze", "cloze-norm", "validation loss", "zero-shot letter", "zero-shot cloze", "zero-shot cloze-norm"}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Fatalf("profile phases %q, want %q", order, want)
	}
	batch := cfg.Eval.Batch
	batches := (cfg.Data.EvalLimit + batch - 1) / batch
	var lastPeak int64
	for _, name := range want {
		p := by[name]
		if p.WallSeconds <= 0 || p.CompileSeconds < 0 || p.ExecuteSeconds < 0 || p.CompileSeconds+p.ExecuteSeconds > p.WallSeconds+0.01 {
			t.Errorf("%s: wall %.3fs, compile %.3fs, execute %.3fs: compile + execute must fit in the wall time", name, p.WallSeconds, p.CompileSeconds, p.ExecuteSeconds)
		}
		// The kernel syncs its per-thread RSS counters lazily, so a read of VmHWM or VmRSS may miss a few pages
		// another read counted: allowed up to 4 MiB.
		if p.PeakRSSBytes <= 0 || p.PeakRSSBytes < lastPeak-4<<20 || p.PeakRSSBytes < p.SampledPeakRSSBytes-4<<20 {
			t.Errorf("%s: peak RSS %d after %d (monotonic), sampled %d (≤ peak)", name, p.PeakRSSBytes, lastPeak, p.SampledPeakRSSBytes)
		}
		lastPeak = p.PeakRSSBytes
		if p.Tokens > p.PaddedTokens || (p.Compiles > 0) != (p.CompileSeconds > 0) {
			t.Errorf("%s: %d tokens > %d padded, or %d compiles in %.3fs", name, p.Tokens, p.PaddedTokens, p.Compiles, p.CompileSeconds)
		}
		// The zero-shot baseline runs on the trained run's executables (zero gates): same shapes, no compile.
		minCompiles := 1
		if strings.HasPrefix(name, "zero-shot ") {
			minCompiles = 0
		}
		switch name {
		case "letter", "zero-shot letter":
			// One row per problem with single-token letters (two with the tokenizer's "▁" split: at most 2×).
			if p.Executions < batches || p.Executions > 2*batches || p.Compiles < minCompiles || p.Compiles > p.Executions || p.Tokens == 0 {
				t.Errorf("%s: %d executions (want %d..%d), %d compiles, %d tokens", name, p.Executions, batches, 2*batches, p.Compiles, p.Tokens)
			}
		case "cloze", "zero-shot cloze":
			// One row per problem: exactly one execution per batch; compiles ≤ executions.
			if p.Executions != batches || p.Compiles < minCompiles || p.Compiles > batches || p.PaddedTokens != int64(batches*batch)*(p.PaddedTokens/int64(batches*batch)) {
				t.Errorf("%s: %d executions (want %d), %d compiles, %d padded tokens", name, p.Executions, batches, p.Compiles, p.PaddedTokens)
			}
		case "cloze-norm", "zero-shot cloze-norm":
			// Reads the cloze pass: runs nothing.
			if p.Executions != 0 || p.Compiles != 0 || p.Tokens != 0 {
				t.Errorf("%s: %+v, want no executions (it reads cloze's pass)", name, p)
			}
		case "validation loss", "train":
			if p.Executions == 0 || p.Tokens == 0 {
				t.Errorf("%s: %+v, want executions and tokens", name, p)
			}
		}
	}
	for _, line := range []string{"compiling the letter scoring graph (shape ", "compiling the cloze scoring graph (shape ", "compiling the loss graph (shape "} {
		if !strings.Contains(log, line) {
			t.Errorf("the log lacks %q:\n%s", line, log)
		}
	}
}

// TestOnePassValidationLoss: with a cloze target, the validation loss read from the cloze pass equals the one the
// loss graph computes in a pass of its own (1e-6), the choices and per-option scores are the same, and the loss
// graph runs on no problem the cloze pass read.
func TestOnePassValidationLoss(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Train.Epochs = 1
	cfg.Data.Target = scienceqa.TargetCloze
	cfg.Eval.Mode = EvalMode("cloze,cloze-norm")
	runWith := func(lossFromCloze bool) (*results.Summary, string, string) {
		t.Helper()
		c := cfg
		c.RunsDir = t.TempDir()
		var out bytes.Buffer
		res, err := run(context.Background(), c, lossFromCloze, &out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		scores, err := os.ReadFile(filepath.Join(res.Dir, "choice_scores_cloze.json"))
		if err != nil {
			t.Fatal(err)
		}
		return res.Summary, out.String(), string(scores)
	}
	one, oneLog, oneScores := runWith(true)
	two, twoLog, twoScores := runWith(false)
	if one.FinalValLoss == nil || two.FinalValLoss == nil {
		t.Fatalf("validation loss missing: %v %v", one.FinalValLoss, two.FinalValLoss)
	}
	if d := math.Abs(*one.FinalValLoss - *two.FinalValLoss); d > 1e-6 {
		t.Errorf("validation loss %.9f from the cloze pass, %.9f from the loss graph (|Δ| %.2g)", *one.FinalValLoss, *two.FinalValLoss, d)
	}
	t.Logf("validation loss %.9f one pass, %.9f two passes", *one.FinalValLoss, *two.FinalValLoss)
	if oneScores != twoScores {
		t.Error("the cloze scores differ when the pass also measures the validation loss")
	}
	for _, p := range []string{"cloze", "cloze-norm"} {
		if !reflect.DeepEqual(one.Scores[p], two.Scores[p]) {
			t.Errorf("%s: accuracy %v one pass, %v two passes", p, one.Scores[p], two.Scores[p])
		}
	}
	// A problem whose training sequence lost more context words to MaxLen than its cloze row (the row must fit the
	// longest option, the sequence the answer and EOS) is not the same sequence: the loss graph reads it.
	split := func(log string) (cloze, graph int) {
		t.Helper()
		i := strings.Index(log, "validation loss: ")
		if i < 0 {
			t.Fatalf("no validation loss line:\n%s", log)
		}
		if _, err := fmt.Sscanf(log[i:], "validation loss: %d problems read from the cloze pass, %d by the loss graph", &cloze, &graph); err != nil {
			t.Fatal(err)
		}
		return cloze, graph
	}
	n := cfg.Data.EvalLimit
	if c, g := split(oneLog); c+g != n || c < n-3 {
		t.Errorf("one pass: %d problems from the cloze pass, %d by the loss graph; want %d in all, almost all from the cloze pass", c, g, n)
	} else {
		for _, p := range one.Profile {
			if p.Phase == "validation loss" && (p.Executions > 0) != (g > 0) {
				t.Errorf("one pass: the loss graph ran %d times for %d problems", p.Executions, g)
			}
		}
	}
	if c, g := split(twoLog); c != 0 || g != n {
		t.Errorf("two passes: %d problems from the cloze pass, %d by the loss graph; want 0, %d", c, g, n)
	}
}

// TestZeroShotReusesTrainedGraphs: the zero-shot baseline a run measures on its trained executables with zero
// gates chooses as the base model's own graphs do (the base model evaluated as scienceqa eval without -adapter
// does), problem by problem, under the same cache key; it compiles nothing for letter scoring (the same shapes as
// the trained evaluation); and the trained run's own scores are those of its saved adapter evaluated afresh.
func TestZeroShotReusesTrainedGraphs(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Train.Epochs = 1
	cfg.Eval.Mode = EvalMode("letter,cloze")
	cfg.Eval.ZeroShot = true
	cfg.ZeroShotCache = t.TempDir()
	// cached reads the one record in a zero-shot cache folder and its key (the file's name).
	cached := func(dir string) (string, *zeroShotRecord) {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(files) != 1 {
			t.Fatalf("zero-shot cache %s: %v, %v", dir, files, err)
		}
		key := strings.TrimSuffix(filepath.Base(files[0]), ".json")
		rec, err := readZeroShot(files[0], key)
		if err != nil {
			t.Fatal(err)
		}
		return key, rec
	}
	evaluate := func(c Config, adapterPath string) *results.Summary {
		t.Helper()
		var out bytes.Buffer
		sum, err := Evaluate(context.Background(), c, adapterPath, t.TempDir(), &out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return sum
	}
	res, log := mustRun(t, cfg)
	if !strings.Contains(log, "the trained graphs with zero gates") {
		t.Errorf("the zero-shot baseline did not reuse the trained graphs:\n%s", log)
	}
	reusedKey, reused := cached(cfg.ZeroShotCache)
	base := cfg
	base.ZeroShotCache = t.TempDir()
	evaluate(base, "") // the base model: fills base.ZeroShotCache
	freshKey, fresh := cached(base.ZeroShotCache)
	if reusedKey != freshKey {
		t.Errorf("zero-shot cache key %s from the run, %s from the base model's evaluation", reusedKey, freshKey)
	}
	for _, p := range []string{"letter", "cloze"} {
		if len(fresh.Predictions[p]) != cfg.Data.EvalLimit || !reflect.DeepEqual(reused.Predictions[p], fresh.Predictions[p]) {
			t.Errorf("%s: zero-shot choices on the trained graphs with zero gates %v, on the base model's %v", p, reused.Predictions[p], fresh.Predictions[p])
		}
	}
	// The trained run, whose executables the baseline then borrows, scores as its saved adapter does.
	again := evaluate(cfg, res.Dir)
	for _, p := range []string{"letter", "cloze"} {
		if !reflect.DeepEqual(res.Summary.Scores[p], again.Scores[p]) {
			t.Errorf("%s: the trained run scores %v, its saved adapter evaluated afresh %v", p, res.Summary.Scores[p], again.Scores[p])
		}
	}
	for _, ph := range res.Summary.Profile {
		if ph.Phase == "zero-shot letter" && ph.Compiles != 0 {
			t.Errorf("zero-shot letter compiled %d graphs on the trained run's executables", ph.Compiles)
		}
	}
}
