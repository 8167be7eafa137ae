package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute/shapes"
)

// evaluation is a run's answers: one result per protocol of -eval, the primary first.
type evaluation struct {
	results []*evaluate.Result
	// loss is what the cloze pass measured of the loss examples evaluateRun was given.
	loss evaluate.ClozeLoss
}

func (ev *evaluation) primary() *evaluate.Result { return ev.results[0] }

// profile is the evaluation's phases (one per protocol), each named prefix + the protocol.
func (ev *evaluation) profile(prefix string) []results.PhaseProfile {
	var ps []results.PhaseProfile
	for _, r := range ev.results {
		p := r.Profile
		p.Phase = prefix + p.Phase
		ps = append(ps, p)
	}
	return ps
}

// evaluateRun answers every evaluation problem by each protocol of -eval (with adapter a; nil: the base model)
// with a progress bar per pass, and frees the scoring executables. features are the image features by pid (nil:
// text only).
func evaluateRun(ctx context.Context, cfg Config, s *session, a *adapter.Adapter, features map[string][]float32, out io.Writer) (*evaluation, error) {
	protocols, err := cfg.Eval.Mode.Protocols()
	if err != nil {
		return nil, err
	}
	env, err := evalEnv(cfg, s, a, s.data.eval, features)
	if err != nil {
		return nil, err
	}
	defer releaseRunner(env.Runner)
	return runProtocols(ctx, cfg, env, protocols, out)
}

// releaseRunner frees a runner's scoring executables and returns the memory of them and of the batches' buffers
// before the next phase builds its own.
func releaseRunner(r *evaluate.Runner) {
	r.Release()
	device.ReleaseHostMemory()
}

// runProtocols answers env's problems by protocols with a progress bar per pass and a line per compile; the
// runner keeps its executables (and its counter, so a later call with the same shapes compiles nothing).
func runProtocols(ctx context.Context, cfg Config, env *evaluate.Env, protocols []evaluate.Protocol, out io.Writer) (*evaluation, error) {
	var bar *progress
	env.Progress = func(name string, done, total int) {
		if bar == nil {
			bar = newProgress(out, name, total, 0)
		}
		if bar.set(done, ""); done >= total {
			bar.finish()
			bar = nil
		}
	}
	if env.Runner.Counter == nil {
		env.Runner.Counter = &device.ExecCounter{}
	}
	env.Runner.Counter.OnCompile = func(name string, ss []shapes.Shape) {
		if bar != nil {
			fmt.Fprintln(out) // off the bar's line
		}
		fmt.Fprintf(out, "compiling the %s (shape %s)…\n", name, evaluate.DescribeShapes(ss))
	}
	res, err := evaluate.Run(ctx, env, protocols, out)
	env.Runner.Counter.OnCompile = nil
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		fmt.Fprintln(out, "profile:", r.Profile)
		if r.Cut > 0 {
			fmt.Fprintf(out, "%s: %d prompts shortened to fit -max-len %d (context words dropped; where even no context fits, the prompt's start)\n", r.Protocol, r.Cut, cfg.Train.MaxLen)
		}
	}
	ev := &evaluation{results: res}
	ev.loss, _ = env.ClozeLoss()
	return ev, nil
}

// evalEnv is the evaluation of problems as a run's evaluation sets it up (with adapter a; nil: the base model):
// its runner, prompt format, target wording, lengths and fallback. features are the image features by pid (nil:
// text only). evaluateRun and Ask both use it, so ask answers exactly as the run's evaluation did.
func evalEnv(cfg Config, s *session, a *adapter.Adapter, problems []*scienceqa.Problem, features map[string][]float32) (*evaluate.Env, error) {
	place, err := device.NewPlacement(s.backend, cfg.Devices, false) // the trainer's mesh (device.Mesh returns one per count)
	if err != nil {
		return nil, err
	}
	return &evaluate.Env{
		Runner:   &evaluate.Runner{Model: s.model, Adapter: a, Backend: s.backend, BatchSize: cfg.Eval.Batch, PadMultiple: 32, MaxLen: cfg.Train.MaxLen, Placement: place},
		Problems: problems,
		Setup: evaluate.Setup{Tokenizer: s.tok, Format: cfg.Data.Format, Captions: cfg.Data.Captions, Target: cfg.Data.Target,
			MaxLen: cfg.Train.MaxLen, MaxNew: cfg.Eval.MaxNew, Resolver: scienceqa.Resolver{Fallback: cfg.Eval.Fallback, Seed: cfg.Seed}, Features: features},
	}, nil
}

// Files of a run folder beside predictions.json (the primary protocol's choices): each other protocol's choices
// and accuracy, every scoring protocol's per-choice scores and every generating protocol's answer texts.
func predictionsFile(protocol string) string  { return "predictions_" + protocol + ".json" }
func accuracyFile(protocol string) string     { return "scores_" + protocol + ".json" }
func choiceScoresFile(protocol string) string { return "choice_scores_" + protocol + ".json" }
func textsFile(protocol string) string        { return "texts_" + protocol + ".json" }

// recordEvaluation writes the evaluation's files to dir and scores it into sum: Primary, Scores and the baselines
// that need no model (majority class, random guessing).
func recordEvaluation(dir string, sum *results.Summary, ev *evaluation, d *runData) error {
	sum.Primary, sum.Scores = ev.primary().Protocol, map[string]results.AccuracyTable{}
	for i, r := range ev.results {
		acc, err := scoreRun(d.eval, r.Choices)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Protocol, err)
		}
		sum.Scores[r.Protocol] = acc
		files := map[string]any{}
		if i == 0 {
			files[PredictionsFile] = r.Choices
		} else {
			files[predictionsFile(r.Protocol)], files[accuracyFile(r.Protocol)] = r.Choices, acc
		}
		if r.Scores != nil {
			files[choiceScoresFile(r.Protocol)] = r.Scores
		}
		if r.Texts != nil {
			files[textsFile(r.Protocol)] = r.Texts
			if sum.Unparsed == nil {
				sum.Unparsed = map[string]int{}
			}
			sum.Unparsed[r.Protocol] = r.Unparsed
		}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			if err := results.WriteJSONAtomic(filepath.Join(dir, name), files[name]); err != nil {
				return err
			}
		}
	}
	for name, row := range baselines(d.train, d.eval) {
		sum.SetBaseline(name, results.AnyProtocol, row)
	}
	return nil
}

// runTable is the category table of a run: a row per protocol (the primary first) beside the paper's rows and the
// same problems' baselines.
func runTable(s *results.Summary) *results.Table {
	rows := append(results.ProtocolRows(s), results.BaselineRows(s)...)
	t := results.ScienceQATable(fmt.Sprintf("ScienceQA accuracy (%%), %s; primary protocol: %s", s.Split, s.Primary), rows, results.PaperScienceQARows())
	var described []string
	for _, name := range s.Protocols() {
		if p, ok := evaluate.Lookup(name); ok {
			described = append(described, name+": "+p.Description())
		}
	}
	if len(described) > 0 {
		t.Notes = append(t.Notes, "Protocols: "+strings.Join(described, "; ")+".")
	}
	if s.Vision != "" {
		t.Notes = append(t.Notes, "Image features: "+s.Vision+".")
	}
	if n := len(s.SkippedImages); n > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("%d problems ran without image features: their image did not decode (-skip-bad-images); pids %s.",
			n, strings.Join(s.SkippedImages, ", ")))
	}
	return t
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
