// Package train is the adapter training loop used by every main: AdamW on the adapter's variables only, the
// official schedule (linear warmup over epochs, then half-cycle cosine per iteration), gradient accumulation,
// global-norm clipping, length-bucketed batches with seeded shuffling, masked next-token cross-entropy on the
// target (answer) tokens, atomic checkpoints with resume, and a stop on a non-finite loss. Options that change
// only the cost, not the result beyond float rounding: the answer head (the LM head at the target positions only),
// length buckets (a few padded lengths chosen from the data: few compiles) and remat (per-layer activation
// checkpointing: little memory). Trainer.Stats counts compiles, executions and padded tokens for a run's profile.
//
// Why not GoMLX's train.Trainer and optimizer.Adam: the official recipe decays prompts and projection weights but
// not gates or biases, and clips by the global gradient norm; GoMLX v0.28.8's Adam applies one weight decay to
// every variable and clips by value only. The update here is a few graph ops over model.Store variables, built
// and run with GoMLX's model.Exec like its own trainer.
package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Config is the optimization recipe.
type Config struct {
	// Epochs may be fractional: 0.5 trains the first half of the first epoch's batches (whole optimizer steps of
	// the cosine schedule over 0.5 epochs), so a one-epoch budget can still be halved.
	Epochs       float64 `json:"epochs"`
	WarmupEpochs float64 `json:"warmup_epochs"`
	BatchSize    int     `json:"batch_size"`  // examples per micro-step
	AccumSteps   int     `json:"accum_steps"` // micro-steps per optimizer step
	BaseLR       float64 `json:"base_lr"`     // scaled by effective batch / 256
	MinLR        float64 `json:"min_lr"`
	WeightDecay  float64 `json:"weight_decay"`
	Beta1        float64 `json:"beta1"`
	Beta2        float64 `json:"beta2"`
	Eps          float64 `json:"eps"`
	ClipNorm     float64 `json:"clip_norm"` // 0: no clipping
	Seed         uint64  `json:"seed"`
	MaxLen       int     `json:"max_len"`
	PadMultiple  int     `json:"pad_multiple"`
	// CheckpointEvery is the number of optimizer steps between checkpoints (0: only at epoch ends).
	CheckpointEvery int `json:"checkpoint_every"`
	// AnswerHead applies the LM head only at the target (loss) positions: the final-norm states of each row's
	// target positions are gathered into a window of AnswerWindow slots (padding slots weigh 0) before the
	// vocabulary projection and log-softmax, instead of projecting every position and picking the targets after.
	// The loss and gradients are the dense path's up to float rounding; only the cost changes. Off by default, and
	// omitted from the JSON when off, so recipes recorded before it exist read and compare as they always did.
	AnswerHead bool `json:"answer_head,omitempty"`
	// LengthBuckets, when > 0, pads batches to at most that many lengths chosen from the examples' lengths (and,
	// with AnswerHead, to at most one answer window per length) so that the padding they add is least (see
	// ChooseLevels), instead of rounding each batch's longest example up to PadMultiple: the step compiles once
	// per (length, window) pair, so fewer pairs compile less. The batches (which examples, in which order) are
	// the same; only the padding changes (and a short last batch is filled to BatchSize with weightless rows), so
	// the loss and gradients change only by float rounding. Off by default and omitted from the JSON when off.
	LengthBuckets int `json:"length_buckets,omitempty"`
	// Remat recomputes each decoder layer's activations in the backward pass instead of keeping them
	// (llama.Inputs.Remat): the training step's temporaries shrink from every layer's activations to one layer's
	// and the layer inputs, for one more forward pass per step. Gradients equal the plain step's to float
	// rounding. Off by default and omitted from the JSON when off.
	Remat bool `json:"remat,omitempty"`
}

// PaperConfig is the official recipe: 5 epochs, 2 warmup, base lr 9e-3, weight decay 0.02, β = (0.9, 0.95),
// batch 4 × accumulation 8 (effective 32), max length 512.
func PaperConfig() Config {
	return Config{Epochs: 5, WarmupEpochs: 2, BatchSize: 4, AccumSteps: 8, BaseLR: 9e-3, MinLR: 0, WeightDecay: 0.02,
		Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, ClipNorm: 0, Seed: 0, MaxLen: 512, PadMultiple: 32}
}

// EpochCount is the number of epochs the trainer enters: Epochs rounded up.
func (c Config) EpochCount() int { return int(math.Ceil(c.Epochs)) }

// EpochBatchLimit is how many of epoch e's n batches are trained: all of them, except in a fractional last
// epoch, where it is that fraction of n, rounded to the nearest batch and at least one.
func (c Config) EpochBatchLimit(e, n int) int {
	if frac := c.Epochs - float64(e); frac < 1 {
		return min(n, max(1, int(math.Round(frac*float64(n)))))
	}
	return n
}

// EffectiveBatch is BatchSize × AccumSteps.
func (c Config) EffectiveBatch() int { return c.BatchSize * c.AccumSteps }

// LR is the absolute peak learning rate.
func (c Config) LR() float64 { return ScaledLR(c.BaseLR, c.EffectiveBatch()) }

// Validate checks the recipe. Epochs may be 0: the trainer then trains nothing, and the adapter stays as
// initialized (zero gates: exactly the pretrained model), which is how a zero-shot baseline is measured.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 0, math.IsNaN(c.Epochs), math.IsInf(c.Epochs, 0), c.BatchSize < 1, c.AccumSteps < 1, c.MaxLen < 2:
		return fmt.Errorf("train: epochs must be finite and ≥ 0, batch size and accumulation steps ≥ 1 and max length ≥ 2: %+v", c)
	case c.BaseLR <= 0 || c.MinLR < 0 || c.WarmupEpochs < 0:
		return fmt.Errorf("train: base lr must be positive, min lr and warmup non-negative: %+v", c)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 || c.Eps <= 0:
		return fmt.Errorf("train: betas must be in [0, 1) and eps positive: %+v", c)
	}
	return nil
}

// Trainer trains one adapter on one frozen model.
type Trainer struct {
	Model   *llama.Model
	Adapter *adapter.Adapter
	Backend compute.Backend
	Config  Config
	// Placement is where the steps run (see NewPlaced); it is not part of Config because a run's results do not
	// depend on it beyond float rounding, and checkpoints move between device counts.
	Placement device.Placement
	// SplitWeights is how many frozen base matrices Placement splits across its devices (0 unless ShardWeights).
	SplitWeights int

	// Counter counts the compiles and executions of the trainer's graphs (see device.ExecCounter); its OnCompile
	// may be set to report compiles.
	Counter *device.ExecCounter
	// Buckets is the padded lengths and windows Train chose (LengthBuckets > 0).
	Buckets BucketPlan

	tokens, paddedTokens int64

	opt                 []*optVars
	stepVar             *model.Variable
	accumExec, stepExec *model.Exec
	evalExec            *model.Exec
}

// New prepares a single-device trainer; the optimizer state is created in the model's store.
func New(m *llama.Model, a *adapter.Adapter, backend compute.Backend, cfg Config) (*Trainer, error) {
	return NewPlaced(m, a, backend, cfg, device.Placement{})
}

// NewPlaced prepares a trainer whose steps run per p: on a mesh, each batch is padded to a multiple of the device
// count with rows that carry no loss weight and sharded along the mesh's data axis, the adapter and optimizer state
// are replicated (and the frozen weights too, or split with p.ShardWeights), and XLA's partitioner inserts the
// reductions of the global batch's masked loss, so the gradient is the same global mean as on one device.
func NewPlaced(m *llama.Model, a *adapter.Adapter, backend compute.Backend, cfg Config, p device.Placement) (*Trainer, error) {
	if cfg.PadMultiple == 0 {
		cfg.PadMultiple = 32
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p.NumDevices() > backend.NumDevices() {
		return nil, fmt.Errorf("train: placement on %d devices, backend %s has %d", p.NumDevices(), backend.Name(), backend.NumDevices())
	}
	t := &Trainer{Model: m, Adapter: a, Backend: backend, Config: cfg, Placement: p, Counter: &device.ExecCounter{}}
	var err error
	if t.opt, t.stepVar, err = newOptimizerState(m.Store, a); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	replicated := []*model.Variable{t.stepVar}
	for _, ov := range t.opt {
		replicated = append(replicated, ov.param, ov.m, ov.v, ov.accum)
	}
	if t.SplitWeights, err = p.PlaceVariables(m.Variables(), replicated); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if !p.Sharded() {
		// The frozen weights into the backend now, their host copies freed: otherwise the loader's float32 copies
		// stay in the Go heap until the first step reads them, and its garbage stays resident long after.
		if err := device.UploadVariables(backend, m.Variables()); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		device.ReleaseHostMemory()
	}
	if err := t.newTrainingExecs(); err != nil {
		return nil, err
	}
	if t.evalExec, err = model.NewExec(backend, m.Store, t.buildEvalLoss()); err != nil {
		return nil, err
	}
	p.Place(t.evalExec.WithName("loss")).SetMaxCache(64) // one graph per padded length
	return t, nil
}

// newTrainingExecs creates the training step's executors (graphs are compiled on first use, one per shape).
func (t *Trainer) newTrainingExecs() error {
	var err error
	if t.accumExec, err = model.NewExec(t.Backend, t.Model.Store, t.buildStep(false)); err != nil {
		return err
	}
	if t.stepExec, err = model.NewExec(t.Backend, t.Model.Store, t.buildStep(true)); err != nil {
		return err
	}
	t.Placement.Place(t.accumExec.WithName("accumulation step")).SetMaxCache(64)
	t.Placement.Place(t.stepExec.WithName("training step")).SetMaxCache(64)
	return nil
}

// ReleaseTrainingGraphs frees the compiled training steps (XLA keeps each executable's code and buffers until it is
// finalized): call it when training is over and evaluation follows. A later Train compiles them again; EvalLoss
// keeps its own graphs.
func (t *Trainer) ReleaseTrainingGraphs() {
	for _, e := range []*model.Exec{t.accumExec, t.stepExec} {
		if e != nil {
			e.Finalize()
		}
	}
	t.accumExec, t.stepExec = nil, nil
}

// Stats are what a trainer's graphs have run so far: compiles and executions (Counter's), and the tokens of the
// batches run (padding excluded) and their padded tokens (rows × padded length; weightless rows a mesh or the
// length buckets add excluded).
type Stats struct {
	device.ExecStats
	Tokens, PaddedTokens int64
}

// Sub is s − o: what ran between two calls of Trainer.Stats.
func (s Stats) Sub(o Stats) Stats {
	return Stats{ExecStats: s.ExecStats.Sub(o.ExecStats), Tokens: s.Tokens - o.Tokens, PaddedTokens: s.PaddedTokens - o.PaddedTokens}
}

// EndPhase ends phase p with s, what its executors ran in it (the difference of two snapshots), and returns the
// phase's profile: compiles, executions and tokens from s, wall time and memory from p.
func (s Stats) EndPhase(p *results.PhaseTimer) results.PhaseProfile {
	p.Profile.Compiles, p.Profile.CompileSeconds, p.Profile.Executions, p.Profile.ExecuteSeconds = s.Compiles, s.CompileSeconds, s.Executions, s.ExecuteSeconds
	p.Profile.Tokens, p.Profile.PaddedTokens = s.Tokens, s.PaddedTokens
	return p.End()
}

// DescribeShapes names a training or loss graph's input shapes for a progress line: "8×64 tokens" and, with the
// answer head (a positions input the tokens' batch and another width), ", answer window 24".
func DescribeShapes(ss []shapes.Shape) string {
	if len(ss) < 4 || ss[0].Rank() != 2 {
		return device.ShapesKey(ss)
	}
	d := ss[0].Dimensions
	s := fmt.Sprintf("%d×%d tokens", d[0], d[1])
	if t := ss[1]; t.Rank() == 2 && t.Dimensions[1] != d[1] {
		s += fmt.Sprintf(", answer window %d", t.Dimensions[1])
	}
	return s
}

// Stats returns the totals so far; the difference of two calls is what happened between them.
func (t *Trainer) Stats() Stats {
	return Stats{ExecStats: t.Counter.Snapshot(), Tokens: t.tokens, PaddedTokens: t.paddedTokens}
}

// countTokens adds a batch's tokens and padded tokens to the trainer's totals.
func (t *Trainer) countTokens(examples []Example, b Batch) {
	for _, i := range b.Indices {
		t.tokens += int64(len(examples[i].Tokens))
	}
	t.paddedTokens += int64(len(b.Indices) * b.Len)
}

// bucket sets batches' padded lengths and windows from the LengthBuckets plan chosen over them, and returns the
// plan (nothing and a zero plan when off).
func (t *Trainer) bucket(examples []Example, batches []Batch) BucketPlan {
	if t.Config.LengthBuckets <= 0 {
		return BucketPlan{}
	}
	p := planBuckets(examples, batches, t.Config.LengthBuckets, t.Config.MaxLen, t.Config.AnswerHead)
	p.apply(examples, batches)
	return p
}

// OptimizerStep returns the number of optimizer steps taken.
func (t *Trainer) OptimizerStep() int {
	v, err := t.stepVar.Value()
	if err != nil {
		return 0
	}
	return int(tensors.ToScalar[float32](v))
}

// batchTensors assembles a right-padded batch: tokens, targets (next token), weights (1 where the next token is a
// target), row lengths, and features (nil when the examples have none); with AnswerHead the targets and weights
// are compacted to each row's target positions (AnswerSlots). On a mesh the rows are padded to a multiple of the
// device count with one-token rows of weight 0: the loss is a masked mean over the batch's target tokens, so they
// change neither the loss nor the gradients.
func (t *Trainer) batchTensors(examples []Example, b Batch) (stepInputs[*tensors.Tensor], error) {
	var d stepInputs[*tensors.Tensor]
	B, S := t.Placement.PadRows(len(b.Indices)), b.Len
	if t.Config.LengthBuckets > 0 {
		// A short batch (an epoch's last) is filled to the batch size with weightless rows, as a mesh's are:
		// another row count would be another shape to compile.
		B = t.Placement.PadRows(max(len(b.Indices), t.Config.BatchSize))
	}
	tokens := make([]int32, B*S)
	targetsIDs := make([]int32, B*S)
	weights := make([]float32, B*S)
	seqLens := make([]int32, B)
	var features []float32
	featLen := -1
	for r, i := range b.Indices {
		e := examples[i]
		if len(e.Tokens) > S {
			return d, fmt.Errorf("train: example %s has %d tokens, more than the maximum length %d", e.ID, len(e.Tokens), S)
		}
		seqLens[r] = int32(len(e.Tokens))
		for j, id := range e.Tokens {
			tokens[r*S+j] = id
			if j > 0 && e.LossMask[j] {
				targetsIDs[r*S+j-1] = id
				weights[r*S+j-1] = 1
			}
		}
		if featLen < 0 {
			featLen = len(e.Features)
		} else if featLen != len(e.Features) {
			return d, fmt.Errorf("train: example %s has %d feature values, others in its batch %d", e.ID, len(e.Features), featLen)
		}
		features = append(features, e.Features...)
	}
	for r := len(b.Indices); r < B; r++ {
		seqLens[r] = 1 // a lone token 0: attention has a key, the row has no target
	}
	if featLen > 0 {
		features = append(features, make([]float32, (B-len(b.Indices))*featLen)...)
	}
	d.Tokens = tensors.FromFlatDataAndDimensions(tokens, B, S)
	d.SeqLens = tensors.FromFlatDataAndDimensions(seqLens, B)
	if t.Config.AnswerHead {
		pos, tgt, w, W := answerSlots(targetsIDs, weights, B, S, b.Window)
		d.Positions, d.Has.Positions = tensors.FromFlatDataAndDimensions(pos, B, W), true
		d.Targets = tensors.FromFlatDataAndDimensions(tgt, B, W)
		d.Weights = tensors.FromFlatDataAndDimensions(w, B, W)
	} else {
		d.Targets = tensors.FromFlatDataAndDimensions(targetsIDs, B, S)
		d.Weights = tensors.FromFlatDataAndDimensions(weights, B, S)
	}
	if featLen > 0 {
		ft, err := t.Adapter.FeatureTensor(features, B)
		if err != nil {
			return d, fmt.Errorf("train: %w", err)
		}
		d.Features, d.Has.Features = ft, true
	}
	return d, nil
}

// StepInfo reports one optimizer step.
type StepInfo struct {
	Epoch      int     // 0-based
	Progress   float64 // fractional epochs done after this step (e.g. 1.25)
	Step       int     // optimizer steps taken so far (1-based after this step)
	StepsTotal int     // optimizer steps in the whole run
	Loss       float64 // mean loss over the step's micro-batches
	LR         float64
	GradNorm   float64
	Tokens     int // sequence tokens (padding excluded) processed in this step
	Seconds    float64
}

// EpochInfo reports one finished epoch.
type EpochInfo struct {
	Epoch     int
	TrainLoss float64 // mean of the epoch's step losses
	Step      int
	Seconds   float64
	Tokens    int
}

// Hooks connect the loop to the outside: logging, checkpoint files, evaluation.
type Hooks struct {
	OnStep  func(StepInfo)
	OnEpoch func(EpochInfo) error
	// Checkpoint is called after every CheckpointEvery optimizer steps and at every epoch end with the position
	// reached; it should persist Trainer.SaveCheckpoint(...) atomically.
	Checkpoint func(pos Position) error
}

// Position is where a run is: the next batch to train is batch Batch of epoch Epoch.
type Position struct {
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
	Step  int `json:"step"`
	// EpochLossSum and EpochSteps carry the running mean of the epoch's losses across a resume.
	EpochLossSum float64 `json:"epoch_loss_sum"`
	EpochSteps   int     `json:"epoch_steps"`
}

// ErrNonFinite is returned when a loss or gradient is NaN or Inf; the update was not applied.
var ErrNonFinite = errors.New("non-finite loss or gradient")

// Train runs the recipe over examples from position start (zero for a fresh run) to the end.
func (t *Trainer) Train(ctx context.Context, examples []Example, start Position, hooks Hooks) error {
	cfg := t.Config
	if len(examples) == 0 {
		return errors.New("train: no training examples")
	}
	if t.stepExec == nil {
		if err := t.newTrainingExecs(); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	lengths, err := t.exampleLengths(examples)
	if err != nil {
		return err
	}
	first := EpochBatches(lengths, cfg.BatchSize, cfg.Seed, 0, cfg.PadMultiple, cfg.MaxLen)
	batchesPerEpoch := len(first)
	// The buckets are chosen once, from the first epoch's batches (a resumed run chooses the same).
	r := &trainRun{examples: examples, lengths: lengths, plan: t.bucket(examples, first), hooks: hooks}
	t.Buckets = r.plan
	for e := range cfg.EpochCount() {
		r.stepsTotal += (cfg.EpochBatchLimit(e, batchesPerEpoch) + cfg.AccumSteps - 1) / cfg.AccumSteps
	}
	pos := start
	for ; pos.Epoch < cfg.EpochCount(); pos.Epoch, pos.Batch, pos.EpochLossSum, pos.EpochSteps = pos.Epoch+1, 0, 0, 0 {
		if err := t.trainEpoch(ctx, r, &pos); err != nil {
			return err
		}
	}
	return nil
}

// trainRun is what every epoch of one Train call shares.
type trainRun struct {
	examples   []Example
	lengths    []int // the examples' token counts
	plan       BucketPlan
	stepsTotal int // optimizer steps in the whole run
	hooks      Hooks
}

// exampleLengths validates every example against the model's vocabulary and MaxLen and returns their lengths.
func (t *Trainer) exampleLengths(examples []Example) ([]int, error) {
	lengths := make([]int, len(examples))
	for i, e := range examples {
		if err := e.Validate(t.Model.Config.VocabSize); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if len(e.Tokens) > t.Config.MaxLen {
			return nil, fmt.Errorf("train: example %s has %d tokens, more than max length %d", e.ID, len(e.Tokens), t.Config.MaxLen)
		}
		lengths[i] = len(e.Tokens)
	}
	return lengths, nil
}

// trainEpoch trains epoch pos.Epoch from batch pos.Batch to its end, advancing pos step by step, and calls the
// step, checkpoint and epoch hooks.
func (t *Trainer) trainEpoch(ctx context.Context, r *trainRun, pos *Position) error {
	cfg, hooks := t.Config, r.hooks
	batches := EpochBatches(r.lengths, cfg.BatchSize, cfg.Seed, pos.Epoch, cfg.PadMultiple, cfg.MaxLen)
	if cfg.LengthBuckets > 0 {
		r.plan.apply(r.examples, batches)
	}
	// A fractional last epoch trains the first part of its batches; the schedule's position still counts in
	// whole epochs (perEpoch).
	perEpoch := float64(len(batches))
	batches = batches[:cfg.EpochBatchLimit(pos.Epoch, len(batches))]
	epochStart := time.Now()
	epochTokens := 0
	for pos.Batch < len(batches) {
		if err := ctx.Err(); err != nil {
			return err
		}
		stepStart := time.Now()
		// One optimizer step: up to AccumSteps micro-batches (fewer at the epoch's end).
		n := min(cfg.AccumSteps, len(batches)-pos.Batch)
		// The iteration's fractional epoch sets the learning rate (per iteration, as the official code).
		lr := LearningRate(float64(pos.Epoch)+float64(pos.Batch)/perEpoch, cfg.LR(), cfg.MinLR, cfg.WarmupEpochs, cfg.Epochs)
		s, err := t.optimizerStep(r.examples, batches[pos.Batch:pos.Batch+n], *pos, lr)
		if err != nil {
			return err
		}
		pos.Batch += n
		pos.Step++
		pos.EpochLossSum += s.lossSum / float64(n)
		pos.EpochSteps++
		epochTokens += s.tokens
		if hooks.OnStep != nil {
			hooks.OnStep(StepInfo{Epoch: pos.Epoch, Progress: float64(pos.Epoch) + float64(pos.Batch)/perEpoch,
				Step: pos.Step, StepsTotal: r.stepsTotal, Loss: s.lossSum / float64(n),
				LR: lr, GradNorm: s.gradNorm, Tokens: s.tokens, Seconds: time.Since(stepStart).Seconds()})
		}
		if hooks.Checkpoint != nil && cfg.CheckpointEvery > 0 && pos.Step%cfg.CheckpointEvery == 0 && pos.Batch < len(batches) {
			if err := hooks.Checkpoint(*pos); err != nil {
				return err
			}
		}
	}
	info := EpochInfo{Epoch: pos.Epoch, TrainLoss: pos.EpochLossSum / float64(max(1, pos.EpochSteps)), Step: pos.Step,
		Seconds: time.Since(epochStart).Seconds(), Tokens: epochTokens}
	if hooks.OnEpoch != nil {
		if err := hooks.OnEpoch(info); err != nil {
			return err
		}
	}
	if hooks.Checkpoint != nil {
		return hooks.Checkpoint(Position{Epoch: pos.Epoch + 1, Step: pos.Step})
	}
	return nil
}

// stepResult is one optimizer step's sums over its micro-batches.
type stepResult struct {
	lossSum  float64 // sum of the micro-batches' mean losses
	gradNorm float64 // the global gradient norm before clipping, from the last micro-batch (the update)
	tokens   int     // sequence tokens, padding excluded
}

// optimizerStep runs one optimizer step over its micro-batches: every one but the last accumulates gradients, the
// last applies the update at learning rate lr. pos is where the step starts (for error messages). A non-finite loss
// or gradient norm stops it with ErrNonFinite before the update is applied.
func (t *Trainer) optimizerStep(examples []Example, micro []Batch, pos Position, lr float64) (stepResult, error) {
	var s stepResult
	n := len(micro)
	for k, b := range micro {
		d, err := t.batchTensors(examples, b)
		if err != nil {
			return s, err
		}
		for _, i := range b.Indices {
			s.tokens += len(examples[i].Tokens)
		}
		t.countTokens(examples, b)
		d.LR, d.Has.LR = tensors.FromScalar(float32(lr)), true
		exec := t.accumExec
		if k == n-1 {
			exec = t.stepExec
		}
		outs, err := t.Counter.Run(t.Placement, exec, d.pack()...)
		if err != nil {
			return s, fmt.Errorf("train: epoch %d batch %d: %w", pos.Epoch, pos.Batch+k, err)
		}
		loss := float64(tensors.ToScalar[float32](outs[0]))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return s, fmt.Errorf("train: epoch %d batch %d (step %d): loss is %v: %w; the adapter keeps its last good values and the last checkpoint is kept",
				pos.Epoch, pos.Batch+k, pos.Step+1, loss, ErrNonFinite)
		}
		s.lossSum += loss
		if k == n-1 {
			s.gradNorm = float64(tensors.ToScalar[float32](outs[2]))
			if math.IsNaN(s.gradNorm) || math.IsInf(s.gradNorm, 0) {
				return s, fmt.Errorf("train: step %d: gradient norm is %v: %w; the update was skipped", pos.Step+1, s.gradNorm, ErrNonFinite)
			}
		}
	}
	return s, nil
}

// EvalLoss returns the mean masked loss over examples (weighted by target tokens).
func (t *Trainer) EvalLoss(examples []Example) (float64, error) {
	lengths := make([]int, len(examples))
	for i, e := range examples {
		lengths[i] = len(e.Tokens)
	}
	sum, count := 0.0, 0.0
	batches := SequentialBatches(lengths, t.Config.BatchSize, t.Config.PadMultiple, t.Config.MaxLen)
	t.bucket(examples, batches)
	for _, b := range batches {
		t.countTokens(examples, b)
		d, err := t.batchTensors(examples, b)
		if err != nil {
			return 0, err
		}
		outs, err := t.Counter.Run(t.Placement, t.evalExec, d.pack()...)
		if err != nil {
			return 0, err
		}
		n := float64(tensors.ToScalar[float32](outs[1]))
		sum += float64(tensors.ToScalar[float32](outs[0])) * n
		count += n
	}
	if count == 0 {
		return 0, errors.New("train: no target tokens to evaluate")
	}
	return sum / count, nil
}
