package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
)

// answerTol is the relative tolerance (of the compared tensor's largest magnitude) of the answer head against the
// dense path on one device: the same matmuls on fewer rows and the masked sum over fewer zeros, so float32
// rounding only.
const answerTol = 1e-5

func TestAnswerSlots(t *testing.T) {
	// B=3, S=4: row 0 has targets at 1 and 3, row 1 none, row 2 all four.
	targets := []int32{0, 7, 0, 9, 0, 0, 0, 0, 1, 2, 3, 4}
	weights := []float32{0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1}
	pos, tgt, w, W := AnswerSlots(targets, weights, 3, 4)
	if W != 4 { // 4 rounded to 8, capped at S=4
		t.Fatalf("W = %d, want 4", W)
	}
	if want := []int32{1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}; !slices.Equal(pos, want) {
		t.Errorf("positions %v, want %v", pos, want)
	}
	if want := []int32{7, 9, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}; !slices.Equal(tgt, want) {
		t.Errorf("targets %v, want %v", tgt, want)
	}
	if want := []float32{1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}; !slices.Equal(w, want) {
		t.Errorf("weights %v, want %v", w, want)
	}
	for _, c := range []struct{ n, S, want int }{{0, 64, 1}, {1, 64, 8}, {8, 64, 8}, {9, 64, 16}, {9, 12, 12}} {
		if got := AnswerWindow(c.n, c.S); got != c.want {
			t.Errorf("AnswerWindow(%d, %d) = %d, want %d", c.n, c.S, got, c.want)
		}
	}
}

// TestAnswerHeadOffLeavesRecipeJSON: the option is omitted from a recipe's JSON when off (checkpoints written
// before it read and compare as before), and a checkpoint resumes with it switched either way.
func TestAnswerHeadOffLeavesRecipeJSON(t *testing.T) {
	b, err := json.Marshal(PaperConfig())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "answer_head") {
		t.Errorf("the default recipe's JSON names the answer head: %s", b)
	}
	cfg := oneStepConfig()
	dense := randomSetup(t, cfg, device.Placement{})
	path := filepath.Join(t.TempDir(), "checkpoint.safetensors")
	if err := dense.SaveCheckpoint(path, Position{Step: 1}); err != nil {
		t.Fatal(err)
	}
	cfg.AnswerHead = true
	if _, err := randomSetup(t, cfg, device.Placement{}).LoadCheckpoint(path); err != nil {
		t.Errorf("a dense run's checkpoint does not resume with the answer head: %v", err)
	}
}

// multiTarget makes examples whose last k tokens are targets, k from 1 to maxTargets (so a batch's rows have
// different counts and some rows more than AnswerWindowMultiple), tokens below vocab.
func multiTarget(n, vocab, maxLen, maxTargets int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []Example
	for i := 0; i < n; i++ {
		L := maxTargets + 4 + rng.IntN(maxLen-maxTargets-4)
		toks := make([]int32, L)
		toks[0] = 1
		for j := 1; j < L; j++ {
			toks[j] = int32(3 + rng.IntN(vocab-3))
		}
		mask := make([]bool, L)
		for j := L - 1 - rng.IntN(maxTargets); j < L; j++ {
			mask[j] = true
		}
		out = append(out, Example{ID: fmt.Sprint("m", i), Tokens: toks, LossMask: mask})
	}
	return out
}

// trainOne runs tr over data and returns its single step and its optimizer state.
func trainOne(t *testing.T, tr *Trainer, data []Example) (StepInfo, map[string][]float32) {
	t.Helper()
	var steps []StepInfo
	if err := tr.Train(context.Background(), data, Position{}, Hooks{OnStep: func(s StepInfo) { steps = append(steps, s) }}); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 {
		t.Fatalf("%d steps, want 1", len(steps))
	}
	return steps[0], state(t, tr)
}

// compareAnswer checks an answer-head step against the dense one: loss and gradient norm, and per adapter variable
// its value and AdamW moments (the moments after one step are the gradient and its square), within tol of each
// tensor's largest magnitude.
func compareAnswer(t *testing.T, what string, tol float64, got, want StepInfo, gotState, wantState map[string][]float32) {
	t.Helper()
	rel := func(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-30) }
	if r := rel(got.Loss, want.Loss); r > tol {
		t.Errorf("%s: loss %.8g, dense %.8g (relative %.2g)", what, got.Loss, want.Loss, r)
	}
	if r := rel(got.GradNorm, want.GradNorm); r > tol {
		t.Errorf("%s: gradient norm %.8g, dense %.8g (relative %.2g)", what, got.GradNorm, want.GradNorm, r)
	}
	worst, worstKey := 0.0, ""
	for k, w := range wantState {
		g := gotState[k]
		if len(g) != len(w) {
			t.Fatalf("%s: %s has %d values, dense %d", what, k, len(g), len(w))
		}
		scale := 0.0
		for _, x := range w {
			scale = math.Max(scale, math.Abs(float64(x)))
		}
		if scale == 0 {
			continue
		}
		for i := range w {
			d := math.Abs(float64(g[i])-float64(w[i])) / scale
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			if d > worst {
				worst, worstKey = d, fmt.Sprintf("%s[%d]", k, i)
			}
		}
	}
	if worst > tol {
		t.Errorf("%s: %s differs from the dense step by %.2g of the tensor's largest magnitude (tolerance %.0g)", what, worstKey, worst, tol)
	}
	t.Logf("%s: loss %.7f (dense %.7f), grad norm %.7f (dense %.7f), largest state difference %.2g (%s)",
		what, got.Loss, want.Loss, got.GradNorm, want.GradNorm, worst, worstKey)
}

// TestAnswerHeadStepEqualsDense: one training step with the answer head (loss, gradient norm, AdamW moments and
// the updated adapter) equals the dense step on a tiny random model, with rows of 1 to 12 targets (windows of 8
// and 16), and the loss-only graph gives the same evaluation loss.
func TestAnswerHeadStepEqualsDense(t *testing.T) {
	cfg := oneStepConfig()
	data := multiTarget(6, llama.Presets["tiny"].VocabSize, cfg.MaxLen, 12, 4)
	want, wantState := trainOne(t, randomSetup(t, cfg, device.Placement{}), data)
	cfg.AnswerHead = true
	answer := randomSetup(t, cfg, device.Placement{})
	got, gotState := trainOne(t, answer, data)
	compareAnswer(t, "tiny", answerTol, got, want, gotState, wantState)

	// The loss-only graph, on untrained adapters: the whole set, and one row alone (another window).
	for _, sub := range [][]Example{data, data[:1]} {
		var losses [2]float64
		for i, on := range []bool{false, true} {
			c := cfg
			c.AnswerHead = on
			l, err := randomSetup(t, c, device.Placement{}).EvalLoss(sub)
			if err != nil {
				t.Fatal(err)
			}
			losses[i] = l
		}
		if math.Abs(losses[1]-losses[0]) > answerTol*math.Abs(losses[0]) {
			t.Errorf("evaluation loss over %d examples: %.8g with the answer head, %.8g dense", len(sub), losses[1], losses[0])
		}
	}
}

// TestAnswerHeadStepEqualsDenseStories260K: the same check on the real stories260K (vocab 512, 5 layers) with a
// random-init adapter on every layer.
func TestAnswerHeadStepEqualsDenseStories260K(t *testing.T) {
	path := assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	cfg := oneStepConfig()
	cfg.MaxLen, cfg.PadMultiple = 64, 32
	setup := func(answer bool) *Trainer {
		m, err := llama.Load(path, dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		a, err := adapter.New(m.Store, adapter.Config{Layers: m.Config.NumLayers, PromptLen: 10, Init: adapter.InitRandom, Seed: 5}, m.Config)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.AnswerHead = answer
		tr, err := New(m, a, device.MustShared(), c)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	dense := setup(false)
	data := multiTarget(6, dense.Model.Config.VocabSize, cfg.MaxLen, 7, 8)
	want, wantState := trainOne(t, dense, data)
	got, gotState := trainOne(t, setup(true), data)
	compareAnswer(t, "stories260K", answerTol, got, want, gotState, wantState)
}

// TestAnswerHeadDataParallel: the answer head's step on 4 devices (6 rows padded to 8) equals the dense step on
// one, within the multi-device tolerance.
func TestAnswerHeadDataParallel(t *testing.T) {
	p := placement(t, 4, false)
	cfg := oneStepConfig()
	data := multiTarget(6, llama.Presets["tiny"].VocabSize, cfg.MaxLen, 12, 6)
	want, wantState := trainOne(t, randomSetup(t, cfg, device.Placement{}), data)
	cfg.AnswerHead = true
	got, gotState := trainOne(t, randomSetup(t, cfg, p), data)
	compareAnswer(t, "4 devices", relTol, got, want, gotState, wantState)
}
