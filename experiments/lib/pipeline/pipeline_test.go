package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
)

// smallConfig is the default run cut down to seconds: stories260K on 48 training and 24 evaluation problems.
func smallConfig(t *testing.T) Config {
	t.Helper()
	assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	c := Stories260K()
	c.RunsDir = t.TempDir()
	c.Data.TrainLimit, c.Data.EvalLimit = 48, 24
	c.Train.Epochs, c.Train.WarmupEpochs, c.Train.MaxLen, c.Train.CheckpointEvery = 2, 0.5, 192, 2
	c.Eval.Mode = EvalBoth
	c.Eval.MaxNew = 8
	return c
}

// mustRun runs cfg and returns the result and the run's log; a failed run fails the test with the log.
func mustRun(t *testing.T, cfg Config) (*Result, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return res, out.String()
}

func TestRunFolderAndSkip(t *testing.T) {
	cfg := smallConfig(t)
	res, log := mustRun(t, cfg)
	t.Log(log)
	for _, f := range []string{ConfigFile, results.MetricsFile, AdapterFile, PredictionsFile, "predictions_letter.json", "texts_generate.json",
		results.SummaryFile, LossFigure + ".png", LossFigure + ".svg", TableFile + ".md"} {
		if st, err := os.Stat(filepath.Join(res.Dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("run folder lacks %s (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(res.Dir, CheckpointFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint left in a complete run folder (%v)", err)
	}
	s := res.Summary
	if _, ok, err := RunComplete(res.Dir); !ok || err != nil {
		t.Errorf("run folder not complete: %v", err)
	}
	if _, ok := s.Unparsed["generate"]; !ok || s.Primary != "generate" || s.Scores["letter"] == nil {
		t.Errorf("-eval both: primary %q, unparsed %v, letter %v", s.Primary, s.Unparsed, s.Scores["letter"])
	}
	if s.PrimaryAccuracy()["Avg"].Total != 24 || s.FinalTrainLoss == nil || s.FinalValLoss == nil {
		t.Errorf("summary incomplete: %+v", s)
	}
	if err := s.PrimaryAccuracy().Validate(); err != nil {
		t.Error(err)
	}
	again, err := Run(context.Background(), cfg, io.Discard)
	if err != nil || !again.Skipped {
		t.Errorf("second run should skip the complete folder: %+v, %v", again, err)
	}
}

// TestKillAndResume stops a run after a mid-training checkpoint, reruns the same command and compares with an
// uninterrupted run: same adapter bytes, same accuracy.
func TestKillAndResume(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Eval.Mode = EvalLetter
	var out bytes.Buffer
	full, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.RunsDir = t.TempDir()
	killedRun(t, cfg2, 5)
	resumed, err := Run(context.Background(), cfg2, &out)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(full.Dir, AdapterFile))
	b, _ := os.ReadFile(filepath.Join(resumed.Dir, AdapterFile))
	if !bytes.Equal(a, b) {
		t.Error("resumed run's adapter differs from the uninterrupted run's")
	}
	if full.Summary.PrimaryAccuracy()["Avg"] != resumed.Summary.PrimaryAccuracy()["Avg"] {
		t.Errorf("accuracy %v (uninterrupted) vs %v (resumed)", full.Summary.PrimaryAccuracy()["Avg"], resumed.Summary.PrimaryAccuracy()["Avg"])
	}
}

// TestEvaluateSavedAdapter re-evaluates a finished run's adapter (the eval subcommand's path) and must reproduce the
// run's own accuracy; the base model evaluates too.
func TestEvaluateSavedAdapter(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Eval.Mode = EvalLetter
	cfg.Train.Epochs = 1
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Evaluate(context.Background(), cfg, res.Dir, filepath.Join(t.TempDir(), "eval"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if s.PrimaryAccuracy()["Avg"] != res.Summary.PrimaryAccuracy()["Avg"] {
		t.Errorf("re-evaluation %v, run %v", s.PrimaryAccuracy()["Avg"], res.Summary.PrimaryAccuracy()["Avg"])
	}
	if _, err := Evaluate(context.Background(), cfg, "", filepath.Join(t.TempDir(), "base"), &out); err != nil {
		t.Errorf("base model evaluation: %v", err)
	}
}

// TestNoEOSTarget checks that -no-eos-target drops exactly the final EOS from training sequences and keeps the
// answer tokens in the loss.
func TestNoEOSTarget(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Data.TrainLimit, cfg.Data.EvalLimit = 8, 4
	tok, d, with := textExamples(t, cfg)
	cfg.Data.NoEOSTarget = true
	without, err := buildExamples(cfg, tok, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range with.train {
		w := without.train[i]
		n := len(e.Tokens)
		if int(e.Tokens[n-1]) != tok.EOS() || len(w.Tokens) != n-1 || !e.LossMask[n-1] || !w.LossMask[n-2] {
			t.Fatalf("example %s: %d tokens (last %d) vs %d without EOS", e.ID, n, e.Tokens[n-1], len(w.Tokens))
		}
	}
}

// TestIDIndependentOfCheckout: the same settings give the same id whether the assets are named by an absolute or
// a relative path, and the backend does not enter the id.
func TestIDIndependentOfCheckout(t *testing.T) {
	a := Stories260K()
	b := Stories260K()
	rel, err := filepath.Rel(mustWd(t), a.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	b.Model.Path = rel
	b.Backend = "go:ops_sequential"
	b.Devices = "all"
	if runID(t, a) != runID(t, b) {
		t.Errorf("ids differ: %s vs %s", runID(t, a), runID(t, b))
	}
	b.Seed = 1
	if runID(t, a) == runID(t, b) {
		t.Error("a different seed gave the same id")
	}
}

// textExamples loads cfg's tokenizer and problems and builds the run's examples without image features, as a run
// does before training.
func textExamples(t *testing.T, cfg Config) (tokenizer.Tokenizer, *runData, *runExamples) {
	t.Helper()
	tok, err := tokenizer.Load(cfg.Model.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	d, err := loadData(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := buildExamples(cfg, tok, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok, d, ex
}

func mustWd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
