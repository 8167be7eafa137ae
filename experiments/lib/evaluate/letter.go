package evaluate

import (
	"context"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// letter is letter scoring: the prompt ends "The answer is" and the option whose letter scores highest is chosen.
type letter struct{}

func (letter) Name() string        { return "letter" }
func (letter) Description() string { return "the option letter after \"The answer is\"" }

func (letter) Evaluate(ctx context.Context, env *Env) (*Result, error) {
	// The prompt states the answer in base_prompt.py's plain way: the training target's wording does not change
	// what is scored.
	po := scienceqa.PromptOptions{UseCaption: env.Captions}
	examples := make([]LetterExample, len(env.Problems))
	res := &Result{Choices: map[string]int{}, Scores: map[string][]float64{}}
	for i, p := range env.Problems {
		l, err := scienceqa.TokenizeLetter(env.Tokenizer, p, env.Format, po, env.MaxLen)
		if err != nil {
			return nil, err
		}
		if l.Cut {
			res.Cut++
		}
		examples[i] = LetterExample{ID: p.PID, Prompt: int32s(l.Prompt), Features: env.features(p.PID)}
		for _, o := range l.Options {
			examples[i].Options = append(examples[i].Options, int32s(o))
		}
	}
	env.Runner.Progress = env.progress
	defer func() { env.Runner.Progress = nil }()
	scores, err := env.Runner.OptionScores(ctx, examples)
	if err != nil {
		return nil, err
	}
	for i, sc := range scores {
		pid := examples[i].ID
		if res.Choices[pid], err = scienceqa.ArgmaxLetter(sc, len(sc)); err != nil {
			return nil, err
		}
		res.Scores[pid] = sc
	}
	return res, nil
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}
