package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
)

// answerHeadShape is one measured batch shape: Batch rows of Len tokens, the last 1 + (Targets-1 ± 1) of them
// targets (Targets on average).
type answerHeadShape struct {
	Name    string `json:"name"`
	Len     int    `json:"len"`
	Targets int    `json:"targets"`
}

// answerHeadShapes are the pipeline targets' training shapes on SmolLM2: the cloze target (a row of ~64 tokens
// whose answer text is ~6 tokens) and the letter target (~160 tokens, ~7 target tokens: "The answer is X." and EOS).
var answerHeadShapes = []answerHeadShape{{"cloze", 64, 6}, {"letter", 160, 7}}

// TestAnswerHeadSpeedSmolLM2 times SmolLM2-135M training steps (batch 8, K=10, L=30, one micro-step per optimizer
// step) with the dense LM head and with the answer head, alternating the two in each round (dense first in even
// rounds, answer head first in odd ones), steps timed after compilation. A measurement, not a unit test: it runs
// only with SQA_ANSWER_HEAD_ROUNDS=N (N ≥ 1 rounds; SQA_ANSWER_HEAD_STEPS timed steps per variant and round,
// default 2). With SQA_ANSWER_HEAD_OUT=file it writes every timed step as JSON.
func TestAnswerHeadSpeedSmolLM2(t *testing.T) {
	rounds, err := strconv.Atoi(os.Getenv("SQA_ANSWER_HEAD_ROUNDS"))
	if err != nil || rounds < 1 {
		t.Skip("set SQA_ANSWER_HEAD_ROUNDS=N to time SmolLM2 training steps with the dense and the answer head")
	}
	steps := 2
	if s, err := strconv.Atoi(os.Getenv("SQA_ANSWER_HEAD_STEPS")); err == nil && s > 0 {
		steps = s
	}
	device.SkipSlowOnPureGo(t, "SmolLM2 training steps")
	path := assets.RequireModel(t, assets.SmolLM2)
	const batch = 8
	trainers := [2]*Trainer{smolLM2Trainer(t, path, batch, false), smolLM2Trainer(t, path, batch, true)}
	names := [2]string{"dense", "answer"}
	vocab := trainers[0].Model.Config.VocabSize
	rng := rand.New(rand.NewPCG(3, 3))
	examples := func(sh answerHeadShape, n int) []Example { return randomTargets(rng, vocab, sh, n) }
	type record struct {
		Shape   string  `json:"shape"`
		Variant string  `json:"variant"`
		Round   int     `json:"round"`
		Seconds float64 `json:"seconds"`
	}
	var records []record
	for _, sh := range answerHeadShapes {
		for v, tr := range trainers { // compile (the step graph of this shape) outside the timing
			t0 := time.Now()
			if err := tr.Train(context.Background(), examples(sh, batch), Position{}, Hooks{}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: first step (compilation included) %.1fs", sh.Name, names[v], time.Since(t0).Seconds())
		}
		perRound := make([][2]float64, rounds) // median step seconds per round and variant
		for r := 0; r < rounds; r++ {
			order := []int{0, 1}
			if r%2 == 1 {
				order = []int{1, 0}
			}
			for _, v := range order {
				var secs []float64
				err := trainers[v].Train(context.Background(), examples(sh, batch*steps), Position{}, Hooks{OnStep: func(s StepInfo) {
					secs = append(secs, s.Seconds)
					records = append(records, record{Shape: sh.Name, Variant: names[v], Round: r, Seconds: s.Seconds})
				}})
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(secs)
				perRound[r][v] = secs[len(secs)/2]
			}
			d, a := perRound[r][0], perRound[r][1]
			tok := float64(batch * sh.Len)
			t.Logf("%s (8×%d, ~%d targets) round %d: dense %.2fs/step (%.0f tokens/s), answer head %.2fs/step (%.0f tokens/s): ratio %.3f",
				sh.Name, sh.Len, sh.Targets, r, d, tok/d, a, tok/a, d/a)
		}
		lo, hi := 1e9, 0.0
		for _, pr := range perRound {
			lo, hi = min(lo, pr[0]/pr[1]), max(hi, pr[0]/pr[1])
		}
		t.Logf("%s: answer-head / dense tokens/s ratio %.3f to %.3f over %d rounds", sh.Name, lo, hi, rounds)
	}
	if out := os.Getenv("SQA_ANSWER_HEAD_OUT"); out != "" {
		b, err := json.MarshalIndent(records, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(fmt.Errorf("writing %s: %w", out, err))
		}
	}
}

// smolLM2Trainer loads SmolLM2 from path with a K=10 adapter on every layer and returns a trainer of one-epoch
// steps of batch examples, with the answer head or the dense LM head.
func smolLM2Trainer(t *testing.T, path string, batch int, answer bool) *Trainer {
	t.Helper()
	m, err := llama.Load(path, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: m.Config.NumLayers, PromptLen: 10}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := PaperConfig()
	cfg.Epochs, cfg.WarmupEpochs, cfg.BatchSize, cfg.AccumSteps, cfg.BaseLR, cfg.MaxLen = 1, 0, batch, 1, 0.3, 512
	cfg.AnswerHead = answer
	tr, err := New(m, a, device.MustShared(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// randomTargets makes n examples of sh.Len random tokens whose last sh.Targets-1 to sh.Targets+1 tokens are
// targets.
func randomTargets(rng *rand.Rand, vocab int, sh answerHeadShape, n int) []Example {
	out := make([]Example, n)
	for i := range out {
		tok := make([]int32, sh.Len)
		mask := make([]bool, sh.Len)
		for j := range tok {
			tok[j] = int32(1 + rng.IntN(vocab-1))
		}
		for j := sh.Len - (sh.Targets - 1 + rng.IntN(3)); j < sh.Len; j++ {
			mask[j] = true
		}
		out[i] = Example{ID: strconv.Itoa(i), Tokens: tok, LossMask: mask}
	}
	return out
}
