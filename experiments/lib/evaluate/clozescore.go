package evaluate

import (
	"context"
	"slices"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
)

// The cloze protocols score each option's text as the continuation of a prompt that does not list the options
// (scienceqa.ClozePrompt), as lm-evaluation-harness scores ARC or SciQ. They read one shared pass per evaluation.

// cloze chooses the option of highest summed log-probability.
type cloze struct{}

func (cloze) Name() string        { return "cloze" }
func (cloze) Description() string { return "the option texts scored as continuations" }

func (cloze) Evaluate(ctx context.Context, env *Env) (*Result, error) {
	cs, err := clozePass(ctx, env)
	if err != nil {
		return nil, err
	}
	return clozeChoices(cs, func(r ClozeResult, o int) float64 { return r.LogProbs[o] }), nil
}

// clozeNorm chooses the option of highest mean log-probability per token.
type clozeNorm struct{}

func (clozeNorm) Name() string { return "cloze-norm" }
func (clozeNorm) Description() string {
	return "the option texts scored as continuations, mean log-probability per token"
}

func (clozeNorm) Evaluate(ctx context.Context, env *Env) (*Result, error) {
	cs, err := clozePass(ctx, env)
	if err != nil {
		return nil, err
	}
	return clozeChoices(cs, func(r ClozeResult, o int) float64 { return r.LogProbs[o] / float64(r.Tokens[o]) }), nil
}

// clozeScored is the shared cloze pass: each problem's scores, how many prompts lost context words, and the
// loss of the LossExamples its rows held.
type clozeScored struct {
	results []ClozeResult
	cut     int
	loss    ClozeLoss
}

// ClozeLoss is the masked negative log-likelihood of the Env's LossExamples that the cloze pass measured: those
// whose tokens are a problem's cloze prompt, then one option's tokens, then at most a few more (an EOS), with the
// loss mask covering exactly the tokens after the prompt (or a suffix of them).
type ClozeLoss struct {
	// NLL is the sum over the measured examples' target tokens of −log p(token | the tokens before it); Targets
	// counts those tokens.
	NLL     float64
	Targets int
	// Measured holds the IDs of the examples measured; the others need a pass of their own.
	Measured map[string]bool
}

// ClozeLoss returns what the cloze pass measured of env.LossExamples, and false when no cloze pass has run.
func (e *Env) ClozeLoss() (ClozeLoss, bool) {
	v, ok := e.memo["cloze"]
	if !ok {
		return ClozeLoss{}, false
	}
	return v.(clozeScored).loss, true
}

// maxFollow bounds the tokens a loss example may add after its option in a cloze row (EOS: one).
const maxFollow = 4

// lossFollow returns the follow that makes cloze example c's row hold loss example l (its answer option the one
// the tokens continue with) and the index in the follow's scores of l's first target, or nil when the row cannot
// hold it: other tokens, or a loss mask that is not one run of targets to the end starting inside the option or
// its follow tokens.
func lossFollow(c ClozeExample, l train.Example, answer int) (*ClozeFollow, int) {
	P := len(c.Prompt)
	if answer < 0 || answer >= len(c.Options) || len(l.Tokens) != len(l.LossMask) || !slices.Equal(l.Tokens[:min(P, len(l.Tokens))], c.Prompt) {
		return nil, 0
	}
	opt := c.Options[answer]
	rest := l.Tokens[P:]
	if len(rest) < len(opt) || !slices.Equal(rest[:len(opt)], opt) || len(rest)-len(opt) > maxFollow {
		return nil, 0
	}
	first := slices.Index(l.LossMask, true)
	if first < P || first < 1 {
		return nil, 0
	}
	for _, m := range l.LossMask[first:] {
		if !m {
			return nil, 0
		}
	}
	return &ClozeFollow{Option: answer, Tokens: slices.Clone(rest[len(opt):])}, first - P
}

// clozePass scores every option of env's problems after its cloze prompt, once per Env.
func clozePass(ctx context.Context, env *Env) (clozeScored, error) {
	return shared(env, "cloze", func() (clozeScored, error) {
		var cs clozeScored
		examples := make([]ClozeExample, len(env.Problems))
		for i, p := range env.Problems {
			c, err := scienceqa.TokenizeCloze(env.Tokenizer, p, scienceqa.ClozeOptions{Format: env.Format, UseCaption: env.Captions, MaxLen: env.MaxLen})
			if err != nil {
				// A question too long for MaxLen even without context cannot be cloze-scored whole.
				return cs, err
			}
			if c.ContextWords >= 0 {
				cs.cut++
			}
			examples[i] = clozeExample(p.PID, c, env.features(p.PID))
		}
		loss := map[string]train.Example{}
		for _, l := range env.LossExamples {
			loss[l.ID] = l
		}
		firsts := map[string]int{}
		for i, p := range env.Problems {
			if l, ok := loss[p.PID]; ok {
				if f, first := lossFollow(examples[i], l, p.Answer); f != nil {
					examples[i].Follow, firsts[p.PID] = f, first
				}
			}
		}
		var err error
		if cs.results, err = env.Runner.ScoreCloze(ctx, examples, env.progress); err != nil {
			return cs, err
		}
		cs.loss.Measured = map[string]bool{}
		for _, r := range cs.results {
			first, ok := firsts[r.ID]
			if !ok {
				continue
			}
			for _, lp := range r.Follow[first:] {
				cs.loss.NLL -= lp
				cs.loss.Targets++
			}
			cs.loss.Measured[r.ID] = true
		}
		return cs, nil
	})
}

// clozeExample is a tokenized cloze prompt as the executor takes it.
func clozeExample(pid string, c scienceqa.Cloze, features []float32) ClozeExample {
	e := ClozeExample{ID: pid, Prompt: int32s(c.Prompt), Features: features}
	for _, o := range c.Options {
		e.Options = append(e.Options, int32s(o))
	}
	return e
}

// clozeChoices scores each option by score and chooses the highest (ties: the first option).
func clozeChoices(cs clozeScored, score func(r ClozeResult, o int) float64) *Result {
	res := &Result{Choices: map[string]int{}, Scores: map[string][]float64{}, Cut: cs.cut}
	for _, r := range cs.results {
		sc := make([]float64, len(r.LogProbs))
		best := 0
		for o := range sc {
			if sc[o] = score(r, o); sc[o] > sc[best] {
				best = o
			}
		}
		res.Choices[r.ID], res.Scores[r.ID] = best, sc
	}
	return res
}
