package evaluate

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
)

// Protocol is one way of answering multiple-choice problems. It prepares its own examples from the problems
// (through datasets/scienceqa), runs them batched on env.Runner (whose adapter may be nil: the base model, as the
// zero-shot baselines run) and returns each problem's choice. A protocol is one file and one line in builtins;
// runs, zero-shot baselines, summaries, tables and ablation reports then take it by name.
type Protocol interface {
	// Name is the protocol's name in -eval lists, summary.json's scores and every table row.
	Name() string
	// Description says in a few words what is scored (table notes).
	Description() string
	// Evaluate answers env.Problems. It stops between batches when ctx is cancelled, returning ctx's error.
	Evaluate(ctx context.Context, env *Env) (*Result, error)
}

// NoZeroShot is implemented by protocols that the zero-shot baseline leaves out (generation: the slowest, and the
// scoring protocols already show what the pretrained model knows).
type NoZeroShot interface{ NoZeroShot() }

// Result is a protocol's answers.
type Result struct {
	Protocol string
	// Choices maps a pid to the chosen option (scienceqa.Unanswered for an answer counted as wrong).
	Choices map[string]int
	// Scores maps a pid to one score per option, higher is better (nil for generation).
	Scores map[string][]float64
	// Unparsed counts generations without a parsable answer (scored by the fallback).
	Unparsed int
	// Texts are generation's answers (the text up to the first newline), by pid.
	Texts map[string]string
	// Cut counts prompts shortened to fit MaxLen: context words dropped, or where even no context fits, the
	// prompt's start (every problem is still answered).
	Cut int
	// Note is a line for the log (e.g. generation's parse failures).
	Note string
	// Profile is where the protocol's time and memory went (Run fills it): wall, the scoring (or generation)
	// graphs' compiles and executions, the tokens scored, peak RSS. A protocol that reads a pass an earlier one ran (cloze-norm
	// after cloze) shows no compile or execution.
	Profile results.PhaseProfile
}

// Setup is how a protocol turns problems into examples.
type Setup struct {
	Tokenizer tokenizer.Tokenizer
	// Format is the prompt format (letter scoring needs an X-A one); Captions appends captions to the context.
	Format   scienceqa.Format
	Captions bool
	// Target is the training answer's wording; generation's prompt follows it.
	Target scienceqa.Target
	// MaxLen bounds every sequence; MaxNew is generation's token budget.
	MaxLen, MaxNew int
	// Resolver turns generated text into a choice, with the configured fallback.
	Resolver scienceqa.Resolver
	// Features are the image features by pid (nil: text only). Counterfactual features (another problem's, or
	// zeros) are passed here with no other change.
	Features map[string][]float32
}

// Env is one evaluation: the runner, the problems and the setup, plus what protocols of the same evaluation share
// (cloze, cloze-norm and cloze-calibrated read one cloze pass).
type Env struct {
	Runner   *Runner
	Problems []*scienceqa.Problem
	Setup
	// Progress, when set, is called after each batch with the running protocol's name.
	Progress func(protocol string, done, total int)
	// LossExamples, when set, are sequences with a loss mask (the evaluation problems' training sequences, ID =
	// pid) whose masked log-likelihood the cloze pass also measures where a problem's cloze row holds the same
	// tokens (ClozeLoss): the validation loss of a cloze-target run without a second pass. Their image features
	// must be the Setup's.
	LossExamples []train.Example

	running string
	memo    map[string]any
}

// progress reports a batch of the running protocol.
func (e *Env) progress(done, total int) {
	if e.Progress != nil {
		e.Progress(e.running, done, total)
	}
}

// shared returns the value computed once per Env under key.
func shared[T any](e *Env, key string, compute func() (T, error)) (T, error) {
	if v, ok := e.memo[key]; ok {
		return v.(T), nil
	}
	v, err := compute()
	if err != nil {
		return v, err
	}
	if e.memo == nil {
		e.memo = map[string]any{}
	}
	e.memo[key] = v
	return v, nil
}

// builtins are the registered protocols, in the order -h lists them.
var builtins = []Protocol{
	letter{},
	cloze{},
	clozeNorm{},
	clozeCalibrated{},
	generation{},
}

var registry = map[string]Protocol{}

func init() {
	for _, p := range builtins {
		Register(p)
	}
}

// Register adds a protocol under its name; a second protocol of the same name panics (registration is init-time).
func Register(p Protocol) {
	if _, dup := registry[p.Name()]; dup || aliases[p.Name()] != nil || strings.ContainsAny(p.Name(), ", ") {
		panic(fmt.Sprintf("evaluate: protocol %q registered twice, an alias, or not a plain name", p.Name()))
	}
	registry[p.Name()] = p
}

// Lookup returns the protocol registered under name.
func Lookup(name string) (Protocol, bool) {
	p, ok := registry[name]
	return p, ok
}

// Names lists the registered protocols, built-in ones first.
func Names() []string {
	var names []string
	seen := map[string]bool{}
	for _, p := range builtins {
		names, seen[p.Name()] = append(names, p.Name()), true
	}
	var extra []string
	for n := range registry {
		if !seen[n] {
			extra = append(extra, n)
		}
	}
	slices.Sort(extra)
	return append(names, extra...)
}

// aliases are the combination names of earlier versions, kept so recorded configs still read: each expands to its
// list (primary first).
var aliases = map[string][]string{
	"both":         {"generate", "letter"},
	"all":          {"generate", "letter", "cloze", "cloze-norm"},
	"letter+cloze": {"letter", "cloze", "cloze-norm"},
}

// ParseList reads an -eval value: protocol names separated by commas (the first is the primary), or one of the
// older combination names (both, all, letter+cloze). Names must be registered and not repeat.
func ParseList(s string) ([]Protocol, error) {
	names := aliases[s]
	if names == nil {
		for _, n := range strings.Split(s, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	var ps []Protocol
	seen := map[string]bool{}
	for _, n := range names {
		p, ok := registry[n]
		if !ok {
			return nil, fmt.Errorf("evaluate: unknown protocol %q in %q (protocols: %s; or both, all, letter+cloze)", n, s, strings.Join(Names(), ", "))
		}
		if seen[n] {
			return nil, fmt.Errorf("evaluate: protocol %q twice in %q", n, s)
		}
		seen[n] = true
		ps = append(ps, p)
	}
	return ps, nil
}

// Run evaluates env.Problems by each protocol in order, logging each one's time to out.
func Run(ctx context.Context, env *Env, protocols []Protocol, out io.Writer) ([]*Result, error) {
	var res []*Result
	for _, p := range protocols {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		fmt.Fprintf(out, "%s: %d problems (%s)…\n", p.Name(), len(env.Problems), p.Description())
		env.running = p.Name()
		env.Runner.defaults()
		phase, before := results.StartPhase(p.Name()), env.Runner.Stats()
		r, err := p.Evaluate(ctx, env)
		if err != nil {
			phase.End()
			return nil, fmt.Errorf("evaluate %s: %w", p.Name(), err)
		}
		r.Protocol = p.Name()
		r.Profile = env.Runner.Stats().Sub(before).EndPhase(phase)
		line := fmt.Sprintf("%s: %d problems in %.1fs", p.Name(), len(r.Choices), time.Since(start).Seconds())
		if r.Note != "" {
			line += ", " + r.Note
		}
		fmt.Fprintln(out, line)
		res = append(res, r)
	}
	return res, nil
}

// features returns a problem's image features from the setup (nil: none).
func (s Setup) features(pid string) []float32 { return s.Features[pid] }
