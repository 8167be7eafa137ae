package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestLearningRateSchedule(t *testing.T) {
	lr := 0.01
	cases := []struct{ epoch, want float64 }{
		{0, 0}, {1, 0.005}, {2, 0.01}, {3.5, 0.005}, {5, 0},
	}
	for _, c := range cases {
		if got := LearningRate(c.epoch, lr, 0, 2, 5); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LearningRate(%v) = %v, want %v", c.epoch, got, c.want)
		}
	}
	if got := ScaledLR(9e-3, 32); math.Abs(got-1.125e-3) > 1e-15 {
		t.Errorf("ScaledLR = %v", got)
	}
}

func TestEpochBatchesDeterministicAndComplete(t *testing.T) {
	lengths := make([]int, 103)
	for i := range lengths {
		lengths[i] = 10 + (i*37)%90
	}
	a := EpochBatches(lengths, 4, 7, 3, 16, 128)
	b := EpochBatches(lengths, 4, 7, 3, 16, 128)
	c := EpochBatches(lengths, 4, 7, 4, 16, 128)
	seen := map[int]bool{}
	same := true
	for i := range a {
		for j, idx := range a[i].Indices {
			seen[idx] = true
			if b[i].Indices[j] != idx {
				t.Fatal("same seed and epoch gave different batches")
			}
			if lengths[idx] > a[i].Len || a[i].Len%16 != 0 {
				t.Fatalf("batch len %d does not fit example of %d", a[i].Len, lengths[idx])
			}
		}
		if len(c) > i && len(c[i].Indices) > 0 && c[i].Indices[0] != a[i].Indices[0] {
			same = false
		}
	}
	if len(seen) != len(lengths) {
		t.Errorf("epoch covers %d of %d examples", len(seen), len(lengths))
	}
	if same {
		t.Error("different epochs gave the same order")
	}
}

// tinySetup loads llama_tiny with a zero-init adapter (L=2, K=4).
func tinySetup(t *testing.T, cfg Config) (*llama.Model, *Trainer) {
	t.Helper()
	m, err := llama.Load(assets.Require(t, assets.Golden("llama_tiny")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: 2, PromptLen: 4, Seed: 1, Version: testVersion}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(m, a, device.MustShared(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, tr
}

// synthetic makes examples whose answer token is a fixed function of the prompt's first token: learnable by the
// adapter, unknown to the random base model.
func synthetic(n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []Example
	for i := 0; i < n; i++ {
		L := 6 + rng.IntN(10)
		toks := []int32{1}
		for j := 0; j < L; j++ {
			toks = append(toks, int32(3+rng.IntN(200)))
		}
		answer := int32(210 + toks[1]%2)
		toks = append(toks, 250, answer)
		mask := make([]bool, len(toks))
		mask[len(toks)-1] = true
		out = append(out, Example{ID: string(rune('a' + i%26)), Tokens: toks, LossMask: mask})
	}
	return out
}

func tinyConfig() Config {
	c := PaperConfig()
	c.Epochs, c.WarmupEpochs, c.BatchSize, c.AccumSteps, c.BaseLR, c.MaxLen, c.PadMultiple = 4, 1, 4, 2, 16, 32, 8
	c.ClipNorm = 1
	c.CheckpointEvery = 1
	return c
}

func snapshot(t *testing.T, tr *Trainer) [][]float32 {
	var out [][]float32
	for _, v := range tr.Adapter.Variables() {
		out = append(out, tensors.MustCopyFlatData[float32](v.MustValue()))
	}
	return out
}

func TestTrainingLowersLossAndFreezesBase(t *testing.T) {
	m, tr := tinySetup(t, tinyConfig())
	data := synthetic(48, 3)
	base := map[string][]float32{}
	for _, v := range m.Variables() {
		base[v.Path()] = tensors.MustCopyFlatData[float32](v.MustValue())
	}
	before, err := tr.EvalLoss(data)
	if err != nil {
		t.Fatal(err)
	}
	startGates := snapshot(t, tr)[1]
	var losses []float64
	err = tr.Train(context.Background(), data, Position{}, Hooks{OnStep: func(s StepInfo) { losses = append(losses, s.Loss) }})
	if err != nil {
		t.Fatal(err)
	}
	after, err := tr.EvalLoss(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.4f → %.4f over %d steps", before, after, len(losses))
	if !(after < before-0.5) {
		t.Errorf("training did not lower the loss enough: %.4f → %.4f", before, after)
	}
	for _, v := range m.Variables() {
		now := tensors.MustCopyFlatData[float32](v.MustValue())
		for i := range now {
			if math.Float32bits(now[i]) != math.Float32bits(base[v.Path()][i]) {
				t.Fatalf("base weight %s changed at %d", v.Path(), i)
			}
		}
	}
	moved := false
	for i, g := range snapshot(t, tr)[1] {
		if g != startGates[i] {
			moved = true
		}
	}
	if !moved {
		t.Error("gates did not move")
	}
}

var errKilled = errors.New("killed")

// trainAndKill trains tr from the start, saving every checkpoint to ckpt, and stops it as a kill would right
// after the checkpoint at optimizer step killAt.
func trainAndKill(t *testing.T, tr *Trainer, data []Example, ckpt string, killAt int, onStep func(StepInfo)) {
	t.Helper()
	err := tr.Train(context.Background(), data, Position{}, Hooks{OnStep: onStep, Checkpoint: func(pos Position) error {
		if err := tr.SaveCheckpoint(ckpt, pos); err != nil {
			return err
		}
		if pos.Step == killAt {
			return errKilled
		}
		return nil
	}})
	if !errors.Is(err, errKilled) {
		t.Fatalf("expected the simulated kill, got %v", err)
	}
}

// TestResumeEqualsUninterrupted kills a run after a checkpoint (mid-epoch) and resumes it in a fresh process state:
// the losses and final adapter bytes must equal an uninterrupted run's.
func TestResumeEqualsUninterrupted(t *testing.T) {
	data := synthetic(40, 5)
	cfg := tinyConfig()
	_, full := tinySetup(t, cfg)
	var fullLosses []float64
	if err := full.Train(context.Background(), data, Position{}, Hooks{OnStep: func(s StepInfo) { fullLosses = append(fullLosses, s.Loss) }}); err != nil {
		t.Fatal(err)
	}

	ckpt := filepath.Join(t.TempDir(), "checkpoint.safetensors")
	_, first := tinySetup(t, cfg)
	var losses []float64
	killAt := 4 // optimizer steps; epoch 0 has 5
	trainAndKill(t, first, data, ckpt, killAt, func(s StepInfo) { losses = append(losses, s.Loss) })
	_, second := tinySetup(t, cfg)
	pos, err := second.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if pos.Step != killAt || pos.Batch == 0 {
		t.Fatalf("checkpoint position %+v, want mid-epoch step %d", pos, killAt)
	}
	losses = losses[:pos.Step]
	if err := second.Train(context.Background(), data, pos, Hooks{OnStep: func(s StepInfo) { losses = append(losses, s.Loss) }}); err != nil {
		t.Fatal(err)
	}
	if len(losses) != len(fullLosses) {
		t.Fatalf("%d losses after resume, %d uninterrupted", len(losses), len(fullLosses))
	}
	for i := range losses {
		if losses[i] != fullLosses[i] {
			t.Errorf("step %d loss %v (resumed) vs %v (uninterrupted)", i+1, losses[i], fullLosses[i])
		}
	}
	a, b := snapshot(t, second), snapshot(t, full)
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				t.Fatalf("adapter variable %d differs at %d after resume", i, j)
			}
		}
	}
}

// TestNonFiniteLossStops poisons the prompts with a NaN: the first step must stop with ErrNonFinite, and the update
// must not have been applied (gates keep their values).
func TestNonFiniteLossStops(t *testing.T) {
	cfg := tinyConfig()
	_, tr := tinySetup(t, cfg)
	p := tensors.MustCopyFlatData[float32](tr.Adapter.Prompts.MustValue())
	p[0] = float32(math.NaN())
	tr.Adapter.Prompts.MustSetValue(tensors.FromFlatDataAndDimensions(p, tr.Adapter.Prompts.Shape().Dimensions...))
	// Open the gates so the poisoned prompt reaches the loss.
	g := tensors.MustCopyFlatData[float32](tr.Adapter.Gates.MustValue())
	for i := range g {
		g[i] = 0.5
	}
	tr.Adapter.Gates.MustSetValue(tensors.FromFlatDataAndDimensions(g, tr.Adapter.Gates.Shape().Dimensions...))
	saved := 0
	err := tr.Train(context.Background(), synthetic(16, 1), Position{}, Hooks{Checkpoint: func(Position) error { saved++; return nil }})
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("want ErrNonFinite, got %v", err)
	}
	if saved != 0 {
		t.Errorf("a checkpoint was written after the non-finite step")
	}
	for i, v := range tensors.MustCopyFlatData[float32](tr.Adapter.Gates.MustValue()) {
		if v != g[i] {
			t.Fatalf("gate %d changed from %v to %v despite the non-finite loss", i, g[i], v)
		}
	}
	if tr.OptimizerStep() != 0 {
		t.Errorf("optimizer step advanced to %d", tr.OptimizerStep())
	}
}

// TestBFloat16BaseTrains trains with bfloat16 base weights and float32 adapter variables (the mixed-precision
// setting of -dtype bfloat16): the loss falls and the adapter stays float32.
func TestBFloat16BaseTrains(t *testing.T) {
	m, err := llama.Load(assets.Require(t, assets.Golden("llama_tiny")), dtypes.BFloat16)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: 2, PromptLen: 4, Seed: 1}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	checkTrainingLowersLoss(t, m, a, "bf16")
	if a.Prompts.Shape().DType != dtypes.Float32 {
		t.Errorf("adapter prompts are %s, want float32", a.Prompts.Shape().DType)
	}
}

// checkTrainingLowersLoss trains adapter a on model m for tinyConfig's run over 48 synthetic examples and checks
// that the evaluation loss falls by more than 0.5 nats; what names the setting in the messages.
func checkTrainingLowersLoss(t *testing.T, m *llama.Model, a *adapter.Adapter, what string) {
	t.Helper()
	tr, err := New(m, a, device.MustShared(), tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	data := synthetic(48, 3)
	before, err := tr.EvalLoss(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Train(context.Background(), data, Position{}, Hooks{}); err != nil {
		t.Fatal(err)
	}
	after, err := tr.EvalLoss(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s base: loss %.4f → %.4f", what, before, after)
	if !(after < before-0.5) {
		t.Errorf("%s training did not lower the loss enough: %.4f → %.4f", what, before, after)
	}
}

// TestFractionalEpochs trains 1.5 and 0.5 epochs: the last epoch stops after that fraction of its batches, the
// cosine schedule spans the fractional total (the last step's lr is the schedule's at the stopping point), and
// the final checkpoint position marks the run complete.
func TestFractionalEpochs(t *testing.T) {
	data := synthetic(40, 5)
	lengths := make([]int, len(data))
	for i, e := range data {
		lengths[i] = len(e.Tokens)
	}
	for _, epochs := range []float64{1.5, 0.5} {
		cfg := tinyConfig()
		cfg.Epochs, cfg.WarmupEpochs = epochs, 0.25
		n := len(EpochBatches(lengths, cfg.BatchSize, cfg.Seed, 0, cfg.PadMultiple, cfg.MaxLen))
		if n%2 != 0 {
			t.Fatalf("want an even number of batches per epoch, have %d", n)
		}
		whole := int(epochs)
		wantBatches := whole*n + n/2
		wantSteps := whole*((n+cfg.AccumSteps-1)/cfg.AccumSteps) + (n/2+cfg.AccumSteps-1)/cfg.AccumSteps
		_, tr := tinySetup(t, cfg)
		var steps []StepInfo
		var epochsSeen []int
		var last Position
		err := tr.Train(context.Background(), data, Position{}, Hooks{
			OnStep:     func(s StepInfo) { steps = append(steps, s) },
			OnEpoch:    func(e EpochInfo) error { epochsSeen = append(epochsSeen, e.Epoch); return nil },
			Checkpoint: func(p Position) error { last = p; return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != wantSteps || steps[0].StepsTotal != wantSteps {
			t.Fatalf("epochs %g: %d steps (total said %d), want %d", epochs, len(steps), steps[0].StepsTotal, wantSteps)
		}
		if got := steps[len(steps)-1].Progress; math.Abs(got-epochs) > 1e-12 {
			t.Errorf("epochs %g: last step at progress %g (%d of %d batches a epoch)", epochs, got, wantBatches, n)
		}
		if len(epochsSeen) != whole+1 || last.Epoch != whole+1 {
			t.Errorf("epochs %g: epochs reported %v, last checkpoint %+v; want %d epochs and position epoch %d", epochs, epochsSeen, last, whole+1, whole+1)
		}
		// The lr of each step is the schedule's at the step's starting position, over the fractional total.
		prev := 0.0
		for _, s := range steps {
			if want := LearningRate(prev, cfg.LR(), cfg.MinLR, cfg.WarmupEpochs, epochs); math.Abs(s.LR-want) > 1e-12 {
				t.Errorf("epochs %g step %d: lr %g, want %g", epochs, s.Step, s.LR, want)
			}
			prev = s.Progress
		}
	}
	if err := (Config{Epochs: math.NaN(), BatchSize: 1, AccumSteps: 1, MaxLen: 8, BaseLR: 1}).Validate(); err == nil {
		t.Error("NaN epochs validated")
	}
}
