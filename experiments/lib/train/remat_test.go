package train

import (
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
)

// TestRematStepEqualsPlain: one training step with each layer's activations recomputed in the backward pass (loss,
// gradient norm, AdamW moments and the updated adapter) equals the plain step on a tiny random model, with the
// answer head on and off.
func TestRematStepEqualsPlain(t *testing.T) {
	for _, answerHead := range []bool{false, true} {
		cfg := oneStepConfig()
		cfg.AnswerHead = answerHead
		data := multiTarget(6, llama.Presets["tiny"].VocabSize, cfg.MaxLen, 12, 4)
		want, wantState := trainOne(t, randomSetup(t, cfg, device.Placement{}), data)
		cfg.Remat = true
		got, gotState := trainOne(t, randomSetup(t, cfg, device.Placement{}), data)
		what := "remat"
		if answerHead {
			what += ", answer head"
		}
		compareAnswer(t, what, answerTol, got, want, gotState, wantState)
	}
}

// TestFrozenWeightsUploadedAndGraphsReleased: a single-device trainer leaves no Go-heap copy of the frozen weights
// (each is in the backend's buffers: shared, or on device only); after ReleaseTrainingGraphs a second Train
// compiles its step again and continues from the trained adapter.
func TestFrozenWeightsUploadedAndGraphsReleased(t *testing.T) {
	cfg := oneStepConfig()
	tr := randomSetup(t, cfg, device.Placement{})
	for _, v := range tr.Model.Variables() {
		val := v.MustValue()
		if !val.IsShared() && val.HasLocal() {
			t.Fatalf("frozen %s still has a separate host copy", v.Path())
		}
	}
	data := multiTarget(6, llama.Presets["tiny"].VocabSize, cfg.MaxLen, 4, 5)
	first, _ := trainOne(t, tr, data)
	tr.ReleaseTrainingGraphs()
	before := tr.Stats()
	second, _ := trainOne(t, tr, data)
	if d := tr.Stats().Sub(before); d.Compiles != 1 || d.Executions != 1 {
		t.Errorf("training after the release: %+v, want 1 compile and 1 execution", d.ExecStats)
	}
	if !(second.Loss < first.Loss) {
		t.Errorf("loss %.6g after a second pass over the same batch, %.6g before: the trained adapter was not kept", second.Loss, first.Loss)
	}
}
