package evaluate

import (
	"context"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
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

// clozeScored is the shared cloze pass: each problem's scores and how many prompts lost context words.
type clozeScored struct {
	results []ClozeResult
	cut     int
}

// clozePass scores every option of env's problems after its cloze prompt, once per Env.
func clozePass(ctx context.Context, env *Env) (clozeScored, error) {
	return shared(env, "cloze", func() (clozeScored, error) {
		var cs clozeScored
		examples := make([]ClozeExample, len(env.Problems))
		for i, p := range env.Problems {
			c, err := scienceqa.TokenizeCloze(env.Tokenizer, p, scienceqa.ClozeOptions{UseCaption: env.Captions, MaxLen: env.MaxLen})
			if err != nil {
				// A question too long for MaxLen even without context cannot be cloze-scored whole.
				return cs, err
			}
			if c.ContextWords >= 0 {
				cs.cut++
			}
			examples[i] = clozeExample(p.PID, c, env.features(p.PID))
		}
		var err error
		cs.results, err = env.Runner.ScoreCloze(ctx, examples, env.progress)
		return cs, err
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
