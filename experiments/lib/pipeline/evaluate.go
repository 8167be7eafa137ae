package pipeline

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute"
)

// predictions are a run's answers: the primary mode's choices (what predictions.json and the summary hold) and,
// in "both" mode, the letter-scoring ones too.
type predictions struct {
	mode     string
	pids     []string
	choice   map[string]int
	letter   map[string]int // "both" mode only
	unparsed int            // generations without a parsable answer
	texts    map[string]string
}

func (p *predictions) byPID() map[string]int { return p.choice }

// evaluateRun answers every evaluation problem by letter scoring and/or greedy generation.
func evaluateRun(cfg Config, m *llama.Model, a *adapter.Adapter, b compute.Backend, tok tokenizer.Tokenizer, ex *runExamples, out io.Writer) (*predictions, error) {
	r := &evaluate.Runner{Model: m, Adapter: a, Backend: b, BatchSize: cfg.EvalBatch, PadMultiple: 32, MaxLen: cfg.MaxLen}
	p := &predictions{mode: cfg.EvalMode, pids: ex.evalPIDs, choice: map[string]int{}}
	if cfg.EvalMode != "generate" {
		start := time.Now()
		choices, err := r.ScoreLetters(ex.letters)
		if err != nil {
			return nil, err
		}
		letter := map[string]int{}
		for i, c := range choices {
			letter[ex.letters[i].ID] = c
		}
		fmt.Fprintf(out, "letter scoring: %d problems in %.1fs\n", len(choices), time.Since(start).Seconds())
		if cfg.EvalMode == "letter" {
			p.choice = letter
			return p, nil
		}
		p.letter = letter
	}
	fallback, err := scienceqa.ParseFallback(cfg.Fallback)
	if err != nil {
		return nil, err
	}
	resolver := scienceqa.Resolver{Fallback: fallback, Seed: cfg.Seed}
	start := time.Now()
	gens, err := r.Generate(ex.gens, cfg.MaxNew, func(id int) bool { return id == tok.EOS() })
	if err != nil {
		return nil, err
	}
	p.texts = map[string]string{}
	for i, g := range gens {
		text := tok.Decode(g)
		// run_gpt3.py stops at the first newline.
		if j := strings.IndexByte(text, '\n'); j >= 0 {
			text = text[:j]
		}
		pid := ex.gens[i].ID
		p.texts[pid] = text
		idx, parsed := resolver.Index(pid, strings.TrimSpace(text), ex.nChoices[i])
		if !parsed {
			p.unparsed++
		}
		p.choice[pid] = idx
	}
	fmt.Fprintf(out, "generation: %d problems in %.1fs, %d without a parsable answer (fallback: %s)\n", len(gens), time.Since(start).Seconds(), p.unparsed, cfg.Fallback)
	return p, nil
}

// scoreRun scores predictions by category.
func scoreRun(problems []*scienceqa.Problem, preds map[string]int) (results.AccuracyTable, error) {
	s, err := scienceqa.Score(problems, preds)
	if err != nil {
		return nil, err
	}
	t := results.AccuracyTable{}
	for c, v := range s.Accuracy {
		t.Set(c, v.Correct, v.Total)
	}
	return t, nil
}

// Baseline names.
const (
	BaselineMajority = "majority class"
	BaselineRandom   = "random (expected)"
)

// baselines scores, on the evaluation problems, the majority-class answer of the training problems (always the
// most frequent correct option index, clipped to each problem's options) and random guessing (the exact expected
// accuracy, the mean of 1/#options).
func baselines(trainPs, evalPs []*scienceqa.Problem) map[string]map[string]float64 {
	counts := map[int]int{}
	for _, p := range trainPs {
		counts[p.Answer]++
	}
	major := 0
	for a, n := range counts {
		if n > counts[major] || (n == counts[major] && a < major) {
			major = a
		}
	}
	type acc struct{ sum, n float64 }
	maj, rnd := map[string]*acc{}, map[string]*acc{}
	for _, p := range evalPs {
		pred := min(major, len(p.Choices)-1)
		hit := 0.0
		if pred == p.Answer {
			hit = 1
		}
		for _, c := range scienceqa.CategoriesOf(p) {
			if maj[c] == nil {
				maj[c], rnd[c] = &acc{}, &acc{}
			}
			maj[c].sum += hit
			maj[c].n++
			rnd[c].sum += 1 / float64(len(p.Choices))
			rnd[c].n++
		}
	}
	out := map[string]map[string]float64{BaselineMajority: {}, BaselineRandom: {}}
	for c := range maj {
		out[BaselineMajority][c] = 100 * maj[c].sum / maj[c].n
		out[BaselineRandom][c] = 100 * rnd[c].sum / rnd[c].n
	}
	out[BaselineMajority+" ("+scienceqa.Letter(major)+")"] = out[BaselineMajority]
	delete(out, BaselineMajority)
	return out
}

// baselineRows turns a summary's baselines into table rows.
func baselineRows(s *results.Summary) []results.MeasuredRow {
	var rows []results.MeasuredRow
	for _, name := range sortedKeys(s.Baselines) {
		t := results.AccuracyTable{}
		for c, v := range s.Baselines[name] {
			t[c] = results.Score{Accuracy: v, Total: 1}
		}
		rows = append(rows, results.MeasuredRow{Name: name + " (same problems)", Accuracy: t})
	}
	return rows
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// saveLetterPredictions writes the letter-scoring answers of a "both" run beside predictions.json.
func saveLetterPredictions(dir string, p *predictions) error {
	if p.letter == nil {
		return nil
	}
	return results.WriteJSONAtomic(filepath.Join(dir, "predictions_letter.json"), p.letter)
}
