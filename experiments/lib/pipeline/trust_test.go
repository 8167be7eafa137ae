package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/results"
)

// Issue 28's threats to the run folder and the run's stages: each test failed on the code before the fix.

// TestForceDeletesOnlyRecordedRun: -force clears a folder only when its config.json names that run; a folder that
// looks complete but records another run (or none) is refused and left as it was.
func TestForceDeletesOnlyRecordedRun(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.RunID, cfg.Force = "victim", true
	dir := filepath.Join(cfg.RunsDir, "victim")
	if err := os.MkdirAll(filepath.Join(dir, "keepme"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A summary marked complete (the form of runs recorded before complete.json) and a config.json naming another run.
	s := &results.Summary{RunID: "other", Complete: true, Primary: "letter",
		Scores: map[string]results.AccuracyTable{"letter": {"Avg": scienceqa.NewCategoryScore(1, 2)}}}
	if err := results.WriteSummary(dir, s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"run_id": "other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("want -force refused, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keepme")); err != nil {
		t.Errorf("-force deleted a folder that is not a recorded run: %v", err)
	}
}

// TestLayersBeyondModel: -L 99 on the 5-layer stories260K is an error naming -L before anything is written (it ran
// with L=5 while recording L99 before).
func TestLayersBeyondModel(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Adapter.Layers = 99
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-L 99") {
		t.Fatalf("want an error naming -L, got %v", err)
	}
	if entries, _ := os.ReadDir(cfg.RunsDir); len(entries) != 0 {
		t.Errorf("the refused run left %d entries in the runs folder", len(entries))
	}
}

// cancelOn is an output writer that cancels a context when a marker appears (a signal arriving at that point).
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if c.marker != "" && strings.Contains(c.buf.String(), c.marker) {
		c.marker = ""
		c.cancel()
	}
	return len(p), nil
}

// TestCancelDuringEvaluation: a signal during evaluation stops the run (it finished and exited 0 before), leaves
// nothing claiming completeness, and the rerun resumes without training again.
func TestCancelDuringEvaluation(t *testing.T) {
	cfg := tinyConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOn{marker: "validation loss on", cancel: cancel}
	_, err := Run(ctx, cfg, out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the run stopped by the signal, got %v\n%s", err, out.buf.String())
	}
	dir := filepath.Join(cfg.RunsDir, runID(t, cfg))
	if _, err := os.Stat(filepath.Join(dir, results.CompleteFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a stopped run wrote complete.json")
	}
	if s, err := results.ReadSummary(dir); err == nil && s.Complete {
		t.Error("a stopped run's summary says complete")
	}
	var again bytes.Buffer
	res, err := Run(context.Background(), cfg, &again)
	if err != nil || res.Skipped {
		t.Fatalf("rerun: %v (skipped %v)\n%s", err, res != nil && res.Skipped, again.String())
	}
	if !strings.Contains(again.String(), "resuming from") || strings.Contains(again.String(), "first step done") {
		t.Errorf("the rerun should resume after training, not train again:\n%s", again.String())
	}
}

// TestProgressNot100AfterStop: a bar stopped part-way (a signal) does not draw 100 %.
func TestProgressNot100AfterStop(t *testing.T) {
	var out bytes.Buffer
	bar := newProgress(&out, "train", 10, 0)
	bar.set(3, "")
	bar.finish()
	if strings.Contains(out.String(), "100%") {
		t.Errorf("a bar stopped at 3/10 drew 100%%: %q", out.String())
	}
	out.Reset()
	bar = newProgress(&out, "train", 4, 0)
	bar.set(4, "")
	bar.finish()
	if !strings.Contains(out.String(), "100%") {
		t.Errorf("a finished bar did not draw 100%%: %q", out.String())
	}
}

// TestFailedLateWriteNotComplete: when a late write fails (table.md cannot be written: here a folder stands in
// its place, as a full disk would), summary.json does not say the run is complete, the folder is not complete, and
// the rerun completes it.
func TestFailedLateWriteNotComplete(t *testing.T) {
	cfg := tinyConfig(t)
	dir := filepath.Join(cfg.RunsDir, runID(t, cfg))
	block := filepath.Join(dir, TableFile+".md")
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, io.Discard); err == nil {
		t.Fatal("the run should fail writing table.md")
	}
	if data, err := os.ReadFile(filepath.Join(dir, results.SummaryFile)); err == nil {
		var m map[string]any
		if json.Unmarshal(data, &m) == nil && m["complete"] == true {
			t.Error("summary.json says complete in a run that failed")
		}
	}
	if _, ok, _ := (&runFolder{dir: dir}).complete(); ok {
		t.Error("the failed run's folder reads as complete")
	}
	if err := os.RemoveAll(block); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil || res.Skipped {
		t.Fatalf("rerun: %v", err)
	}
	if _, ok, err := (&runFolder{dir: dir}).complete(); !ok || err != nil {
		t.Errorf("rerun not complete: %v", err)
	}
}

// TestRecordedDateFromRecord: a complete run says when it was recorded from its record, not from the files'
// modification time (a fresh clone's files are all dated today).
func TestRecordedDateFromRecord(t *testing.T) {
	cfg := tinyConfig(t)
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 0, 0, time.UTC)
	for _, f := range []string{results.SummaryFile, results.CompleteFile, ConfigFile} {
		if err := os.Chtimes(filepath.Join(res.Dir, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := Run(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "2001-02-03") || !strings.Contains(out.String(), "recorded on "+time.Now().Format("2006-01-02")) {
		t.Errorf("want today's recording date from the record, got:\n%s", out.String())
	}
}
