package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
)

// TestCompareTwoRuns compares two committed default-sized runs (seed 0, lr 0.3 and 0.1) on their 904 problems.
func TestCompareTwoRuns(t *testing.T) {
	runs := filepath.Join(assets.RepoRoot(), "results", "runs")
	a, b := filepath.Join(runs, "smollm2-text-L30-K10-zero-e1-s0-92cd6556"), filepath.Join(runs, "smollm2-text-L30-K10-zero-e1-s0-e2f96a31")
	cfg, err := pipeline.ReadConfig(a)
	if err != nil {
		t.Skipf("committed run absent: %v", err)
	}
	if _, err := os.Stat(cfg.Data.ProblemsFile); err != nil {
		t.Skipf("ScienceQA problems absent: %v", err)
	}
	var out, errb bytes.Buffer
	if err := runCompare([]string{"-protocol", "cloze", a, b}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	// scores_cloze.json of each run: 485 and 489 of 904.
	for _, want := range []string{"(485/904)", "(489/904)", "A − B: -0.44 points", "no significant difference"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := runCompare([]string{"-subset", "TXT", a}, &out, &errb); err == nil {
		t.Error("-subset TXT accepted")
	}
}
