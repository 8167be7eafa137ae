package evaluate

import (
	"context"
	"fmt"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// generation is the paper's protocol: greedy generation, the answer parsed from "The answer is X", unparsable
// answers resolved by the configured fallback.
type generation struct{}

func (generation) Name() string        { return "generate" }
func (generation) Description() string { return "greedy generation, \"The answer is X\" parsed" }
func (generation) NoZeroShot()         {}

func (generation) Evaluate(ctx context.Context, env *Env) (*Result, error) {
	po := scienceqa.PromptOptions{UseCaption: env.Captions, Target: env.Target}
	examples := make([]GenExample, len(env.Problems))
	res := &Result{Choices: map[string]int{}, Texts: map[string]string{}}
	for i, p := range env.Problems {
		ids, cut, err := scienceqa.GenerationPrompt(env.Tokenizer, p, env.Format, po, env.MaxLen, env.MaxNew)
		if err != nil {
			return nil, err
		}
		if cut {
			res.Cut++
		}
		examples[i] = GenExample{ID: p.PID, Prompt: ids, Features: env.features(p.PID)}
	}
	env.Runner.Progress = env.progress
	defer func() { env.Runner.Progress = nil }()
	eos := env.Tokenizer.EOS()
	gens, err := env.Runner.Generate(ctx, examples, env.MaxNew, func(id int) bool { return id == eos })
	if err != nil {
		return nil, err
	}
	for i, g := range gens {
		text := env.Tokenizer.Decode(g)
		// run_gpt3.py stops at the first newline.
		if j := strings.IndexByte(text, '\n'); j >= 0 {
			text = text[:j]
		}
		p := env.Problems[i]
		res.Texts[p.PID] = text
		idx, parsed := env.Resolver.Index(p.PID, strings.TrimSpace(text), len(p.Choices))
		if !parsed {
			res.Unparsed++
		}
		res.Choices[p.PID] = idx
	}
	res.Note = fmt.Sprintf("%d without a parsable answer (fallback: %s)", res.Unparsed, env.Resolver.Fallback)
	return res, nil
}
