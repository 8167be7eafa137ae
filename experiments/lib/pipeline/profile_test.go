package pipeline

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	log := out.String()
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
	want := []string{"train", "validation loss", "letter", "cloze", "cloze-norm", "zero-shot letter", "zero-shot cloze", "zero-shot cloze-norm"}
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
		// The kernel's per-thread RSS counters are synced lazily, so a VmRSS sample may exceed a later VmHWM read by
		// a few pages: allowed up to 4 MiB.
		if p.PeakRSSBytes <= 0 || p.PeakRSSBytes < lastPeak || p.PeakRSSBytes < p.SampledPeakRSSBytes-4<<20 {
			t.Errorf("%s: peak RSS %d after %d (monotonic), sampled %d (≤ peak)", name, p.PeakRSSBytes, lastPeak, p.SampledPeakRSSBytes)
		}
		lastPeak = p.PeakRSSBytes
		if p.Tokens > p.PaddedTokens || (p.Compiles > 0) != (p.CompileSeconds > 0) {
			t.Errorf("%s: %d tokens > %d padded, or %d compiles in %.3fs", name, p.Tokens, p.PaddedTokens, p.Compiles, p.CompileSeconds)
		}
		switch name {
		case "letter", "zero-shot letter":
			// One row per problem with single-token letters (two with the tokenizer's "▁" split: at most 2×).
			if p.Executions < batches || p.Executions > 2*batches || p.Compiles < 1 || p.Compiles > p.Executions || p.Tokens == 0 {
				t.Errorf("%s: %d executions (want %d..%d), %d compiles, %d tokens", name, p.Executions, batches, 2*batches, p.Compiles, p.Tokens)
			}
		case "cloze", "zero-shot cloze":
			// One row per problem: exactly one execution per batch; compiles ≤ executions, at least one each
			// (the zero-shot graph has no adapter: another executable).
			if p.Executions != batches || p.Compiles < 1 || p.Compiles > batches || p.PaddedTokens != int64(batches*batch)*(p.PaddedTokens/int64(batches*batch)) {
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
