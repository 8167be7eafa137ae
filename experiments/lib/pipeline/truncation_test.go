package pipeline

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/results"
)

// TestTruncationRecorded: with a -max-len that cuts contexts, the run counts the problems whose context was cut
// (training and evaluation), the count agrees with one made here from scienceqa.Tokenize, and summary.json
// records it.
func TestTruncationRecorded(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Train.MaxLen = 160
	tok, d, ex := textExamples(t, cfg)
	po := scienceqa.PromptOptions{UseCaption: cfg.Data.Captions, Target: cfg.Data.Target}
	var want scienceqa.TruncationCount
	for _, p := range d.train {
		e, err := scienceqa.Tokenize(tok, p, cfg.Data.Format, scienceqa.TokenOptions{PromptOptions: po, MaxLen: cfg.Train.MaxLen})
		want.Note(p.PID, err == nil && e.ContextCut(), errors.Is(err, scienceqa.ErrTooLong))
	}
	got := ex.trunc.Train
	if got.ContextCut == 0 || got.Problems != len(d.train) || got.ContextCut != want.ContextCut || got.TooLong != want.TooLong ||
		!reflect.DeepEqual(got.ContextCutPIDs, want.ContextCutPIDs) {
		t.Fatalf("train: %+v, want %+v (with some contexts cut at -max-len %d)", got, want, cfg.Train.MaxLen)
	}
	if ex.trunc.Eval.Problems != len(d.eval) || ex.trunc.Eval.ContextCut == 0 || ex.trunc.MaxLen != cfg.Train.MaxLen {
		t.Fatalf("eval: %+v", ex.trunc)
	}

	res, _ := mustRun(t, cfg)
	data, err := os.ReadFile(filepath.Join(res.Dir, results.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Truncation *scienceqa.Truncation `json:"truncation"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Truncation == nil || s.Truncation.Train.ContextCut != got.ContextCut || s.Truncation.Eval.ContextCut != ex.trunc.Eval.ContextCut {
		t.Errorf("summary.json truncation %+v, want %+v", s.Truncation, ex.trunc)
	}
}
