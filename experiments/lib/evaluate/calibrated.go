package evaluate

import (
	"context"
	"fmt"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// clozeCalibrated is cloze scoring with unconditional normalization (the multiple-choice literature's
// "unconditional" or "calibrated" score): an option scores its log-probability after the cloze prompt minus its
// log-probability after the bare cue "Answer:" (scienceqa.ClozeAnswerCue, no question, context or image), so an
// option that is likely whatever the question (a short, common word) loses its head start.
type clozeCalibrated struct{}

func (clozeCalibrated) Name() string { return "cloze-calibrated" }
func (clozeCalibrated) Description() string {
	return "cloze log-probability minus the option's log-probability after \"Answer:\" alone"
}

func (clozeCalibrated) Evaluate(ctx context.Context, env *Env) (*Result, error) {
	cs, err := clozePass(ctx, env)
	if err != nil {
		return nil, err
	}
	bare := make([]ClozeExample, len(env.Problems))
	for i, p := range env.Problems {
		bare[i] = clozeExample(p.PID, scienceqa.TokenizeContinuations(env.Tokenizer, scienceqa.ClozeAnswerCue, p.Choices), nil)
	}
	uncond, err := env.Runner.ScoreCloze(ctx, bare, env.progress)
	if err != nil {
		return nil, fmt.Errorf("unconditional pass: %w", err)
	}
	byID := make(map[string]ClozeResult, len(uncond))
	for _, u := range uncond {
		byID[u.ID] = u
	}
	return clozeChoices(cs, func(r ClozeResult, o int) float64 { return r.LogProbs[o] - byID[r.ID].LogProbs[o] }), nil
}
