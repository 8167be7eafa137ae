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
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute"
)

// predictions are a run's answers: the primary mode's choices (what predictions.json and the summary hold) and
// the other protocols' beside them (letter in "both"/"all", cloze in "all").
type predictions struct {
	mode     EvalMode
	pids     []string
	choice   map[string]int
	letter   map[string]int // when letter scoring ran and is not the primary
	cloze    map[string]int // cloze by summed log-probability, when it ran and is not the primary
	norm     map[string]int // cloze by per-token mean log-probability, whenever cloze ran
	unparsed int            // generations without a parsable answer
	texts    map[string]string
}

func (p *predictions) byPID() map[string]int { return p.choice }

// evaluateRun answers every evaluation problem by the protocols cfg.Eval.Mode names, each with its progress bar.
func evaluateRun(cfg Config, m *llama.Model, a *adapter.Adapter, b compute.Backend, tok tokenizer.Tokenizer, ex *runExamples, out io.Writer) (*predictions, error) {
	mode := cfg.Eval.Mode
	place, err := device.NewPlacement(b, cfg.Devices, false) // the trainer's mesh (device.Mesh returns one per count)
	if err != nil {
		return nil, err
	}
	r := &evaluate.Runner{Model: m, Adapter: a, Backend: b, BatchSize: cfg.Eval.Batch, PadMultiple: 32, MaxLen: cfg.Train.MaxLen, Placement: place}
	p := &predictions{mode: mode, pids: ex.evalPIDs, choice: map[string]int{}}
	if mode.letter() {
		start := time.Now()
		fmt.Fprintf(out, "letter scoring %d problems (compiling the scoring graph first)…\n", len(ex.letters))
		bar := newProgress(out, "letter scoring", len(ex.letters), 0)
		r.Progress = func(done, _ int) { bar.set(done, "") }
		choices, err := r.ScoreLetters(ex.letters)
		r.Progress = nil
		bar.finish()
		if err != nil {
			return nil, err
		}
		letter := map[string]int{}
		for i, c := range choices {
			letter[ex.letters[i].ID] = c
		}
		fmt.Fprintf(out, "letter scoring: %d problems in %.1fs\n", len(choices), time.Since(start).Seconds())
		if mode == EvalLetter {
			p.choice = letter
			return p, nil
		}
		if mode == EvalScores {
			p.choice = letter // the primary; cloze goes beside it
		} else {
			p.letter = letter
		}
	}
	if mode.cloze() {
		start := time.Now()
		fmt.Fprintf(out, "cloze scoring %d problems (compiling first)…\n", len(ex.clozes))
		bar := newProgress(out, "cloze scoring", len(ex.clozes), 0)
		res, err := r.ScoreCloze(ex.clozes, func(done, _ int) { bar.set(done, "") })
		bar.finish()
		if err != nil {
			return nil, err
		}
		sum, norm := evaluate.ClozePredictions(res)
		p.norm = norm
		fmt.Fprintf(out, "cloze scoring: %d problems in %.1fs\n", len(res), time.Since(start).Seconds())
		if mode == EvalCloze {
			p.choice = sum
			return p, nil
		}
		p.cloze = sum
		if mode == EvalScores {
			return p, nil
		}
	}
	fallback, err := cfg.Eval.Fallback.scienceqa()
	if err != nil {
		return nil, err
	}
	resolver := scienceqa.Resolver{Fallback: fallback, Seed: cfg.Seed}
	start := time.Now()
	fmt.Fprintf(out, "generating up to %d tokens for %d problems (compiling prefill and decode first)…\n", cfg.Eval.MaxNew, len(ex.gens))
	bar := newProgress(out, "generation", len(ex.gens), 0)
	r.Progress = func(done, _ int) { bar.set(done, "") }
	gens, err := r.Generate(ex.gens, cfg.Eval.MaxNew, func(id int) bool { return id == tok.EOS() })
	r.Progress = nil
	bar.finish()
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
	fmt.Fprintf(out, "generation: %d problems in %.1fs, %d without a parsable answer (fallback: %s)\n", len(gens), time.Since(start).Seconds(), p.unparsed, cfg.Eval.Fallback)
	return p, nil
}

// extraScoreFiles are the secondary protocols' files in a run folder: predictions_<name>.json and
// scores_<name>.json, and their row label in the table.
var extraScoreFiles = []struct{ name, file, label string }{
	{"letter", "scores_letter.json", "letter scoring"},
	{"cloze", "scores_cloze.json", "cloze scoring"},
	{"cloze-norm", "scores_cloze-norm.json", "cloze scoring, per-token mean"},
}

// ScoringLabel is a scoring protocol's label ("letter" → "letter scoring", "cloze", "cloze-norm") as tables, the
// zero-shot cache and summary.json's baselines name it; "" for an unknown protocol.
func ScoringLabel(name string) string {
	for _, x := range extraScoreFiles {
		if x.name == name {
			return x.label
		}
	}
	return ""
}

// ZeroShotBaseline is the name of the zero-shot baseline by protocol name in summary.json ("zero-shot, <label>").
func ZeroShotBaseline(name string) string { return "zero-shot, " + ScoringLabel(name) }

// extra returns the secondary predictions by name.
func (p *predictions) extra() map[string]map[string]int {
	return map[string]map[string]int{"letter": p.letter, "cloze": p.cloze, "cloze-norm": p.norm}
}

// saveExtraPredictions writes the secondary protocols' answers beside predictions.json.
func saveExtraPredictions(dir string, p *predictions) error {
	for name, preds := range p.extra() {
		if preds == nil {
			continue
		}
		if err := results.WriteJSONAtomic(filepath.Join(dir, "predictions_"+name+".json"), preds); err != nil {
			return err
		}
	}
	return nil
}

// extraRows scores the secondary protocols (table rows beside the primary one), saving each score file in dir.
// When scorings is not nil, each protocol's accuracy is also stored in it by name.
func extraRows(dir, id string, problems []*scienceqa.Problem, p *predictions, scorings map[string]results.AccuracyTable) ([]results.MeasuredRow, error) {
	var rows []results.MeasuredRow
	ex := p.extra()
	for _, x := range extraScoreFiles {
		preds := ex[x.name]
		if preds == nil {
			continue
		}
		acc, err := scoreRun(problems, preds)
		if err != nil {
			return nil, err
		}
		rows = append(rows, results.MeasuredRow{Name: id + " (" + x.label + ")", Accuracy: acc})
		if scorings != nil {
			scorings[x.name] = acc
		}
		if dir != "" {
			if err := results.WriteJSONAtomic(filepath.Join(dir, x.file), acc); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
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
