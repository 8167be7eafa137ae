package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Tolerances of the multi-device checks. The partitioned graphs sum the masked loss and the gradients in another
// order (per-device partial sums, then an all-reduce), so float32 results differ from one device's by rounding
// only: ~1e-6 relative. 1e-4 relative (of the largest magnitude of the compared tensor) leaves room for that while
// a missing or doubled gradient average (a factor of 2 or 4 on the gradient, hence on AdamW's first moment and on
// the gradient norm) is off by 50% or more.
// relTol is a variable only for TestV2TrainTests, which loosens it (see there).
var relTol = 1e-4

const absTol = 1e-7

// placement returns the placement on n devices of the shared backend, or skips the test where it has fewer.
func placement(t *testing.T, n int, shardWeights bool) device.Placement {
	t.Helper()
	b := device.MustShared()
	if have := b.NumDevices(); have < n {
		t.Skipf("backend %s has %d device(s), the check needs %d (the pure-Go backend has one; the XLA CPU plugin exposes 4 unless $%s says otherwise)",
			b.Name(), have, n, device.CPUDevicesEnvVar)
	}
	p, err := device.NewPlacement(b, fmt.Sprint(n), shardWeights)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomSetup is a tiny random LLaMA (4 layers, dims divisible by 4) with a random-init adapter (so the gates are
// open and every adapter variable gets a gradient), placed per p.
func randomSetup(t *testing.T, cfg Config, p device.Placement) *Trainer {
	t.Helper()
	m, err := llama.RandomModel(llama.Presets["tiny"], dtypes.Float32, 7)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: 2, PromptLen: 4, Init: adapter.InitRandom, Seed: 3, Version: testVersion}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewPlaced(m, a, device.MustShared(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// state is every optimizer-visible value of a trainer: per adapter variable its value and AdamW moments.
func state(t *testing.T, tr *Trainer) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for _, ov := range tr.opt {
		for kind, v := range map[string]*model.Variable{"param": ov.param, "m": ov.m, "v": ov.v} {
			out[kind+"/"+ov.checkpointID] = tensors.MustCopyFlatData[float32](v.MustValue())
		}
	}
	return out
}

// closeTo reports the first element of got that is not within tolerance of want.
func closeTo(got, want []float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > relTol*scale+absTol || math.IsNaN(float64(got[i])) {
			return fmt.Errorf("element %d: %g vs %g (|diff| %.3g, tolerance %.3g)", i, got[i], want[i], d, relTol*scale+absTol)
		}
	}
	return nil
}

func closeScalar(got, want float64) bool {
	return math.Abs(got-want) <= relTol*math.Abs(want)+absTol
}

func compareStates(t *testing.T, what string, got, want map[string][]float32) {
	t.Helper()
	worst := 0.0
	for k, w := range want {
		if err := closeTo(got[k], w); err != nil {
			t.Errorf("%s: %s: %v", what, k, err)
		}
		scale := 0.0
		for _, x := range w {
			scale = math.Max(scale, math.Abs(float64(x)))
		}
		for i := range w {
			if scale > 0 && i < len(got[k]) {
				worst = math.Max(worst, math.Abs(float64(got[k][i])-float64(w[i]))/scale)
			}
		}
	}
	t.Logf("%s: largest difference %.2g of the tensor's largest magnitude", what, worst)
}

// oneStepConfig: one optimizer step over one batch of 6 examples (not a multiple of 4: the 4-device batch gets 2
// padding rows), no clipping so that AdamW's first moment is the raw gradient times (1-β1).
func oneStepConfig() Config {
	c := tinyConfig()
	c.Epochs, c.WarmupEpochs, c.BatchSize, c.AccumSteps, c.ClipNorm, c.CheckpointEvery = 1, 0, 6, 1, 0, 0
	return c
}

// TestDataParallelStepEqualsSingleDevice: one training step (loss, gradient norm, AdamW moments — the gradient —
// and the updated adapter) on 2 and 4 devices equals the single-device step on the same global batch.
func TestDataParallelStepEqualsSingleDevice(t *testing.T) {
	data := synthetic(6, 11)
	cfg := oneStepConfig()
	run := func(p device.Placement) (StepInfo, map[string][]float32) {
		tr := randomSetup(t, cfg, p)
		if got := tr.stepExec.NumDevices(); got != p.NumDevices() {
			t.Fatalf("the step graph runs on %d devices, want %d", got, p.NumDevices())
		}
		return trainOne(t, tr, data)
	}
	want, wantState := run(device.Placement{})
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprintf("%d-devices", n), func(t *testing.T) {
			got, gotState := run(placement(t, n, false))
			if !closeScalar(got.Loss, want.Loss) || !closeScalar(got.GradNorm, want.GradNorm) {
				t.Errorf("loss %v grad norm %v on %d devices, single device %v %v", got.Loss, got.GradNorm, n, want.Loss, want.GradNorm)
			}
			t.Logf("%d devices: loss %.7f (single %.7f), grad norm %.7f (single %.7f)", n, got.Loss, want.Loss, got.GradNorm, want.GradNorm)
			compareStates(t, fmt.Sprintf("%d devices", n), gotState, wantState)
		})
	}
}

// TestDataParallelRunEqualsSingleDevice: a short run (2 epochs, accumulation 2, a last partial batch) has the same
// step losses on 4 devices as on one, and ends with the same adapter.
func TestDataParallelRunEqualsSingleDevice(t *testing.T) {
	p := placement(t, 4, false)
	data := synthetic(22, 5)
	cfg := tinyConfig()
	cfg.Epochs, cfg.BatchSize = 2, 3 // 3 rows → 4 on 4 devices
	run := func(p device.Placement) ([]float64, map[string][]float32) {
		tr := randomSetup(t, cfg, p)
		var losses []float64
		if err := tr.Train(context.Background(), data, Position{}, Hooks{OnStep: func(s StepInfo) { losses = append(losses, s.Loss) }}); err != nil {
			t.Fatal(err)
		}
		return losses, state(t, tr)
	}
	want, wantState := run(device.Placement{})
	got, gotState := run(p)
	if len(got) != len(want) {
		t.Fatalf("%d steps on 4 devices, %d on one", len(got), len(want))
	}
	for i := range want {
		if !closeScalar(got[i], want[i]) {
			t.Errorf("step %d loss %v on 4 devices, %v on one", i+1, got[i], want[i])
		}
	}
	t.Logf("%d steps, losses %.4f → %.4f", len(want), want[0], want[len(want)-1])
	compareStates(t, "after the run", gotState, wantState)
}

// TestResumeAcrossDeviceCounts: a run checkpointed mid-epoch on 4 devices resumes on 1 and on 2 with the losses and
// final adapter of the uninterrupted 4-device run.
func TestResumeAcrossDeviceCounts(t *testing.T) {
	p4 := placement(t, 4, false)
	data := synthetic(24, 9)
	cfg := tinyConfig()
	cfg.Epochs = 2
	full := randomSetup(t, cfg, p4)
	var fullLosses []float64
	if err := full.Train(context.Background(), data, Position{}, Hooks{OnStep: func(s StepInfo) { fullLosses = append(fullLosses, s.Loss) }}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "checkpoint.safetensors")
	first := randomSetup(t, cfg, p4)
	const killAt = 2 // optimizer steps; an epoch has 3
	trainAndKill(t, first, data, ckpt, killAt, nil)
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("on-%d", n), func(t *testing.T) {
			p := device.Placement{}
			if n > 1 {
				p = placement(t, n, false)
			}
			tr := randomSetup(t, cfg, p)
			pos, err := tr.LoadCheckpoint(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			if pos.Step != killAt || pos.Batch == 0 {
				t.Fatalf("checkpoint position %+v, want mid-epoch step %d", pos, killAt)
			}
			losses := append([]float64(nil), fullLosses[:killAt]...)
			if err := tr.Train(context.Background(), data, pos, Hooks{OnStep: func(s StepInfo) { losses = append(losses, s.Loss) }}); err != nil {
				t.Fatal(err)
			}
			if len(losses) != len(fullLosses) {
				t.Fatalf("%d losses after resume, %d uninterrupted", len(losses), len(fullLosses))
			}
			for i := range losses {
				if !closeScalar(losses[i], fullLosses[i]) {
					t.Errorf("step %d loss %v (resumed on %d) vs %v (4 devices throughout)", i+1, losses[i], n, fullLosses[i])
				}
			}
			compareStates(t, fmt.Sprintf("resumed on %d", n), state(t, tr), state(t, full))
		})
	}
}

// TestShardedWeightsSameLogits: frozen matrices split over 4 devices give the logits of replicated weights on one
// device, and a training step gives the same loss and adapter.
func TestShardedWeightsSameLogits(t *testing.T) {
	p := placement(t, 4, true)
	cfg := oneStepConfig()
	single := randomSetup(t, cfg, device.Placement{})
	sharded := randomSetup(t, cfg, p)
	if sharded.SplitWeights == 0 {
		t.Fatal("no frozen matrix was split")
	}
	// Every matrix of the tiny preset is divisible by 4: all of them are split; norms stay replicated.
	matrices := 0
	for _, v := range sharded.Model.Variables() {
		if v.Shape().Rank() == 2 {
			matrices++
		}
	}
	if sharded.SplitWeights != matrices {
		t.Errorf("%d of %d frozen matrices split", sharded.SplitWeights, matrices)
	}
	data := synthetic(6, 2)
	logits := func(tr *Trainer) []float32 {
		d, err := tr.batchTensors(data, Batch{Indices: []int{0, 1, 2, 3, 4, 5}, Len: 24})
		if err != nil {
			t.Fatal(err)
		}
		tok, lens := d.Tokens, d.SeqLens
		e, err := model.NewExec(tr.Backend, tr.Model.Store, func(scope *model.Scope, in []*Node) *Node {
			g := in[0].Graph()
			return tr.Model.Forward(g, llama.Inputs{Tokens: in[0], SeqLens: in[1], Extension: tr.Adapter.Extension(g, nil)}).Logits
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := tr.Placement.Run(tr.Placement.Place(e), tok, lens)
		if err != nil {
			t.Fatal(err)
		}
		flat := tensors.MustCopyFlatData[float32](outs[0])
		return flat[:6*24*tr.Model.Config.VocabSize] // drop padding rows (none here: 6 → 8 on 4 devices)
	}
	if err := closeTo(logits(sharded), logits(single)); err != nil {
		t.Errorf("logits with split frozen weights: %v", err)
	}
	for _, tr := range []*Trainer{single, sharded} {
		if err := tr.Train(context.Background(), data, Position{}, Hooks{}); err != nil {
			t.Fatal(err)
		}
	}
	compareStates(t, "after a step with split weights", state(t, sharded), state(t, single))
}

// TestCorruptCheckpointIsAnError overwrites checkpoint bytes with 0xFF without changing the size: loading must fail
// naming the file (the checksum), not load NaNs that the next step would report as a training failure.
func TestCorruptCheckpointIsAnError(t *testing.T) {
	tr := randomSetup(t, oneStepConfig(), device.Placement{})
	path := filepath.Join(t.TempDir(), "checkpoint.safetensors")
	if err := tr.SaveCheckpoint(path, Position{Step: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.LoadCheckpoint(path); err != nil {
		t.Fatalf("intact checkpoint: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) - 64; i < len(data)-32; i++ {
		data[i] = 0xFF // float32 NaNs in the last tensors' data
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = tr.LoadCheckpoint(path)
	if err == nil || errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupted checkpoint: error %v, want a checksum error naming %s", err, path)
	}
}

// TestWeightDecayByStructure: the optimizer groups follow nanoGPT's p.dim() >= 2 per adapted layer, which keeps the
// official groups: prompts and projection weights decay, gates (per head or per layer) and biases do not.
func TestWeightDecayByStructure(t *testing.T) {
	for _, gate := range adapter.GateModes {
		m, err := llama.RandomModel(llama.Presets["tiny"], dtypes.Float32, 1)
		if err != nil {
			t.Fatal(err)
		}
		a, err := adapter.New(m.Store, adapter.Config{Layers: 2, PromptLen: 4, Gate: gate,
			Visual: &adapter.VisualConfig{Scales: 2, FeatureDim: 8}}, m.Config)
		if err != nil {
			t.Fatal(err)
		}
		ovs, _, err := newOptimizerState(m.Store, a)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, ov := range ovs {
			base := ov.checkpointID[strings.LastIndexByte(ov.checkpointID, '/')+1:]
			want := base == "prompts" || strings.HasPrefix(base, "w")
			if ov.weightDecay != want {
				t.Errorf("gate %s: %s %v: weight decay %v, want %v", gate, ov.checkpointID, ov.param.Shape().Dimensions, ov.weightDecay, want)
			}
			seen++
		}
		if seen < 4 {
			t.Errorf("gate %s: only %d adapter variables", gate, seen)
		}
	}
	if Decays([]int{5}, false) || !Decays([]int{4, 3}, false) || Decays([]int{2, 8}, true) || !Decays([]int{2, 4, 8}, true) {
		t.Error("Decays does not follow rank ≥ 2 per layer")
	}
}
