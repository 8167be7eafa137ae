package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/results"
)

// tinyConfig is smallConfig cut further: 16 training and 8 evaluation problems, letter scoring, checkpoints every
// 2 steps.
func tinyConfig(t *testing.T) Config {
	c := smallConfig(t)
	c.Data.TrainLimit, c.Data.EvalLimit = 16, 8
	c.Eval.Mode = "letter"
	c.Train.BatchSize = 2
	return c
}

// killedRun runs cfg until the given optimizer step and stops it there (a simulated kill; with checkpoints every 2
// steps, step 3 is a kill after the step-2 checkpoint), checks that a checkpoint is left and returns the run folder.
func killedRun(t *testing.T, cfg Config, step int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.OnStep = func(s train.StepInfo) {
		if s.Step == step {
			cancel()
		}
	}
	_, err := Run(ctx, cfg, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("expected the simulated kill, got %v", err)
	}
	dir := filepath.Join(cfg.RunsDir, runID(t, cfg))
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint after the kill: %v", err)
	}
	return dir
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// flipLastByte changes a file's last byte, keeping its size.
func flipLastByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectRefused reruns cfg and expects a refusal whose message holds every want, with config.json untouched.
func expectRefused(t *testing.T, cfg Config, dir string, want ...string) {
	t.Helper()
	before, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil {
		t.Fatal("the run went ahead")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); !bytes.Equal(before, after) {
		t.Error("the refused run rewrote config.json")
	}
}

// TestResumeRefusesChangedModel: a model whose bytes changed after the kill is refused, naming it and the ways on;
// -force-resume continues and records the change.
func TestResumeRefusesChangedModel(t *testing.T) {
	cfg := tinyConfig(t)
	model := filepath.Join(t.TempDir(), "stories260K.bin")
	copyFile(t, assets.Path("models", "stories260K", "stories260K.bin"), model)
	cfg.Model.Path = model
	dir := killedRun(t, cfg, 3)
	flipLastByte(t, model)
	expectRefused(t, cfg, dir, "model "+model, "content changed", "-force-resume", "-run NEWID")
	cfg.ForceResume = true
	if _, err := Run(context.Background(), cfg, io.Discard); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if !strings.Contains(string(data), `"forced_resume"`) {
		t.Error("config.json does not record the forced resume")
	}
}

// TestResumeRefusesChangedData: the problems file changed after the kill.
func TestResumeRefusesChangedData(t *testing.T) {
	cfg := tinyConfig(t)
	problems := filepath.Join(t.TempDir(), "problems.json")
	copyFile(t, cfg.Data.ProblemsFile, problems)
	cfg.Data.ProblemsFile = problems
	dir := killedRun(t, cfg, 3)
	f, err := os.OpenFile(problems, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("\n")
	_ = f.Close()
	expectRefused(t, cfg, dir, "problems "+problems, "content changed")
}

// TestResumeRefusesChangedRecipe: an explicit run id with another training limit (other problems) is refused.
func TestResumeRefusesChangedRecipe(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.RunID = "fixed"
	dir := killedRun(t, cfg, 3)
	cfg.Data.TrainLimit = 12
	expectRefused(t, cfg, dir, "train_limit: recorded 16, now 12")
}

// TestCorruptCheckpointRefused: same-size corruption of the checkpoint is an error naming it, not a silent resume.
func TestCorruptCheckpointRefused(t *testing.T) {
	cfg := tinyConfig(t)
	dir := killedRun(t, cfg, 3)
	ckpt := filepath.Join(dir, CheckpointFile)
	flipLastByte(t, ckpt)
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), ckpt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupted checkpoint: %v", err)
	}
}

// TestSkipVerifiesFinalFiles: a complete run whose adapter was corrupted afterwards (same size) is not reported
// as complete.
func TestSkipVerifiesFinalFiles(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Train.Epochs = 1
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := results.VerifyComplete(res.Dir); err != nil {
		t.Fatalf("finished run: %v", err)
	}
	adapterPath := filepath.Join(res.Dir, AdapterFile)
	flipLastByte(t, adapterPath)
	if _, err := Run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), adapterPath) {
		t.Fatalf("skip of a corrupted run: %v", err)
	}
}

// TestMetricsWriteFailureStopsRun: a metrics line that cannot be written (disk full at step 3) stops the run with
// the step-2 checkpoint intact and the run not complete; the rerun resumes, and its summary sums both processes'
// training time.
func TestMetricsWriteFailureStopsRun(t *testing.T) {
	if !fullDiskSupported {
		t.Skip("provoking a full disk needs Linux's /dev/full")
	}
	cfg := tinyConfig(t)
	dir := filepath.Join(cfg.RunsDir, runID(t, cfg))
	// OnStep runs before the step's metrics line is written: from step 3 on, the open log writes to a full disk.
	cfg.OnStep = func(s train.StepInfo) {
		if s.Step == 3 {
			fillDisk(t, filepath.Join(dir, results.MetricsFile))
		}
	}
	_, err := Run(context.Background(), cfg, io.Discard)
	cfg.OnStep = nil
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want the disk-full error, got %v", err)
	}
	if !strings.Contains(err.Error(), "checkpoint of step 2") {
		t.Errorf("error does not say what was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, results.CompleteFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a run whose log lost a line was marked complete")
	}
	ms, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	firstSeconds, _ := results.RunTotals(ms[:2])
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ms, err = results.ReadMetrics(filepath.Join(dir, results.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, m := range ms {
		if m.Kind == results.KindStep {
			if seen[*m.Step] {
				t.Errorf("step %d logged twice", *m.Step)
			}
			seen[*m.Step] = true
		}
	}
	total, _ := results.RunTotals(ms)
	if got := res.Summary.Timings.TrainSeconds; got < total || got <= firstSeconds {
		t.Errorf("summary train time %v: want the run's total %v (> %v before the failure)", got, total, firstSeconds)
	}
}

// TestConcurrentStart: a second process on a locked run folder says who holds it and leaves it untouched.
func TestConcurrentStart(t *testing.T) {
	cfg := tinyConfig(t)
	dir := filepath.Join(cfg.RunsDir, runID(t, cfg))
	l, err := results.LockRun(context.Background(), dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	_, err = Run(context.Background(), cfg, io.Discard)
	var busy *results.BusyError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "-wait") {
		t.Fatalf("want a busy error with the way on, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the refused process wrote config.json")
	}
}

// TestNaNAtStep1: a non-finite loss before the first checkpoint says that nothing was kept and leaves no folder.
func TestNaNAtStep1(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Adapter.PromptStd = math.MaxFloat32 // prompts overflow: the first loss is not finite
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no checkpoint had been written yet") {
		t.Fatalf("want the non-finite loss error saying nothing was kept, got %v", err)
	}
	if strings.Contains(err.Error(), "checkpoint of step") {
		t.Errorf("error claims a checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RunsDir, runID(t, cfg))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed run left its folder: %v", err)
	}
}
