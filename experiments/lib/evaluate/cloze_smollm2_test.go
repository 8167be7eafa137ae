package evaluate

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/gomlx/compute/dtypes"
)

// TestClozeSmolLM2 measures zero-shot cloze accuracy of the real SmolLM2-135M on the project's evaluation fold
// (fold 4 of the 5-fold split of problems_test.json). It runs only with SQA_CLOZE_PROBLEMS=N (the first N
// problems of the fold; 0 = all 904): a measurement, not a unit test. With SQA_CLOZE_OUT=file it also writes the
// results and the scoring's wall time (model loading and tokenization excluded) as JSON, to compare two builds'
// predictions and speed; SQA_CLOZE_REPEAT=K scores the problems K times and records each time (the first includes
// compilation).
func TestClozeSmolLM2(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("SQA_CLOZE_PROBLEMS"))
	if err != nil {
		t.Skip("set SQA_CLOZE_PROBLEMS=N (0 = the whole fold) to measure SmolLM2's zero-shot cloze accuracy")
	}
	path, err := assets.EnsureModel(assets.SmolLM2, false, os.Stderr)
	if err != nil {
		t.Skip(err)
	}
	ds, err := scienceqa.LoadOfficial(scienceqa.Options{Problems: assets.Require(t, assets.Path("scienceqa", "problems_test.json")), NoImageCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	_, eval, err := scienceqa.TrainEval(ds.Problems, 5, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 && n < len(eval) {
		eval = eval[:n]
	}
	m, err := llama.Load(path, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var ex []ClozeExample
	for _, p := range eval {
		c, err := scienceqa.TokenizeCloze(tok, p, scienceqa.ClozeOptions{MaxLen: 512})
		if err != nil {
			t.Fatal(err)
		}
		e := ClozeExample{ID: p.PID, Prompt: int32s(c.Prompt)}
		for _, o := range c.Options {
			e.Options = append(e.Options, int32s(o))
		}
		ex = append(ex, e)
	}
	r := &Runner{Model: m, Backend: device.MustShared(), MaxLen: 512}
	repeat := 1
	if k, err := strconv.Atoi(os.Getenv("SQA_CLOZE_REPEAT")); err == nil && k > 1 {
		repeat = k
	}
	var res []ClozeResult
	var seconds []float64
	start := time.Now()
	for range repeat {
		t0 := time.Now()
		res, err = r.ScoreCloze(context.Background(), ex, func(done, total int) {
			if done%50 == 0 {
				t.Logf("%d/%d problems, %.0fs", done, total, time.Since(t0).Seconds())
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		seconds = append(seconds, time.Since(t0).Seconds())
		t.Logf("cloze scoring of %d problems: %.1fs", len(ex), seconds[len(seconds)-1])
	}
	if out := os.Getenv("SQA_CLOZE_OUT"); out != "" {
		b, err := json.MarshalIndent(struct {
			Seconds []float64
			Results []ClozeResult
		}{seconds, res}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, norm := ClozePredictions(res)
	for name, preds := range map[string]map[string]int{"cloze (sum)": sum, "cloze-norm (per-token mean)": norm} {
		s, err := scienceqa.Score(eval, preds)
		if err != nil {
			t.Fatal(err)
		}
		avg, _ := s.Percent("Avg")
		t.Logf("%s: %.2f %% of %d problems (%.0fs)", name, avg, len(eval), time.Since(start).Seconds())
	}
}
