package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/shapes"
)

// bruteLevels is ChooseLevels by enumerating every subset of the rounded values that contains the largest.
func bruteLevels(values, weights []int, n, multiple, top int) (best []int, cost int) {
	var cands []int
	for _, v := range values {
		c := min(PadLen(max(v, 1), multiple, 0), top)
		if !slices.Contains(cands, c) {
			cands = append(cands, c)
		}
	}
	slices.Sort(cands)
	m := len(cands)
	cost = math.MaxInt
	for mask := 0; mask < 1<<(m-1); mask++ {
		set := []int{}
		for i := 0; i < m-1; i++ {
			if mask&(1<<i) != 0 {
				set = append(set, cands[i])
			}
		}
		set = append(set, cands[m-1])
		if len(set) > n {
			continue
		}
		c := 0
		for i, v := range values {
			c += weights[i] * FitLevel(set, min(v, top))
		}
		if c < cost {
			best, cost = set, c
		}
	}
	return best, cost
}

// TestChooseLevelsIsOptimal: the dynamic program's levels cost what the best subset found by enumeration costs,
// cover every value, and are at most n multiples of the rounding (the top one capped).
func TestChooseLevelsIsOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 200; trial++ {
		k := 1 + rng.IntN(30)
		values, weights := make([]int, k), make([]int, k)
		for i := range values {
			values[i], weights[i] = 1+rng.IntN(200), rng.IntN(9)
		}
		n, top := 1+rng.IntN(5), 150+rng.IntN(100)
		got := ChooseLevels(values, weights, n, 16, top)
		want, wantCost := bruteLevels(values, weights, n, 16, top)
		cost := 0
		for i, v := range values {
			l := FitLevel(got, min(v, top))
			if l == 0 {
				t.Fatalf("trial %d: value %d fits no level of %v", trial, v, got)
			}
			cost += weights[i] * l
		}
		if cost != wantCost {
			t.Fatalf("trial %d: levels %v cost %d, the best (%v) %d", trial, got, cost, want, wantCost)
		}
		if len(got) > n || !slices.IsSorted(got) {
			t.Fatalf("trial %d: %v: more than %d levels or unsorted", trial, got, n)
		}
		for _, l := range got {
			if l%16 != 0 && l != top {
				t.Fatalf("trial %d: level %d is neither a multiple of 16 nor the cap %d", trial, l, top)
			}
		}
	}
	if got := ChooseLevels([]int{5, 40, 100}, []int{1, 1, 1}, 2, 16, 96); !reflect.DeepEqual(got, []int{48, 96}) {
		t.Errorf("ChooseLevels(5, 40, 100; 2 levels, cap 96) = %v, want [48 96]", got)
	}
}

// TestBucketPlanCoversEveryEpoch: with the plan chosen from epoch 0, every batch of later epochs holds its longest
// example and its fullest row's targets, uses only the plan's lengths and each length's one window, and the run's
// (length, window) shapes are at most LengthBuckets.
func TestBucketPlanCoversEveryEpoch(t *testing.T) {
	data := multiTarget(300, 256, 200, 40, 9)
	lengths := make([]int, len(data))
	for i, e := range data {
		lengths[i] = len(e.Tokens)
	}
	plan := planBuckets(data, EpochBatches(lengths, 8, 3, 0, 32, 256), 4, 256, true)
	if len(plan.Lengths) == 0 || len(plan.Lengths) > 4 || len(plan.Windows) != len(plan.Lengths) {
		t.Fatalf("plan %+v: want 1 to 4 lengths, one window each", plan)
	}
	shapes := map[[2]int]bool{}
	for epoch := 0; epoch < 5; epoch++ {
		batches := EpochBatches(lengths, 8, 3, epoch, 32, 256)
		plan.apply(data, batches)
		for _, b := range batches {
			if !slices.Contains(plan.Lengths, b.Len) {
				t.Fatalf("epoch %d: batch length %d is not a planned length %v", epoch, b.Len, plan.Lengths)
			}
			for _, i := range b.Indices {
				if len(data[i].Tokens) > b.Len || targetCount(data[i]) > b.Window {
					t.Fatalf("epoch %d: example of %d tokens and %d targets in a batch of length %d, window %d",
						epoch, len(data[i].Tokens), targetCount(data[i]), b.Len, b.Window)
				}
			}
			shapes[[2]int{b.Len, b.Window}] = true
		}
	}
	if len(shapes) > 4 {
		t.Errorf("%d (length, window) shapes over 5 epochs, want ≤ 4: %v", len(shapes), shapes)
	}
}

// TestLengthBucketsSameTraining: training with length buckets visits the same batches in the same order as
// without; only their padding differs, so the losses, gradient norms and the trained adapter agree to float32
// rounding, with and without the answer head; and the trainer counts fewer compiles (the short last batch is
// not another shape) and more padded tokens.
func TestLengthBucketsSameTraining(t *testing.T) {
	for _, answerHead := range []bool{false, true} {
		t.Run(fmt.Sprint("answer_head=", answerHead), func(t *testing.T) {
			cfg := tinyConfig()
			cfg.Epochs, cfg.AccumSteps, cfg.PadMultiple, cfg.MaxLen, cfg.AnswerHead = 1, 1, 8, 48, answerHead
			// 13 examples: the last batch has one row (filled to 4 with weightless rows under buckets).
			data := multiTarget(13, llama.Presets["tiny"].VocabSize, cfg.MaxLen, 12, 8)
			run := func(c Config) ([]StepInfo, map[string][]float32, Stats) {
				tr := randomSetup(t, c, device.Placement{})
				var steps []StepInfo
				if err := tr.Train(context.Background(), data, Position{}, Hooks{OnStep: func(s StepInfo) { steps = append(steps, s) }}); err != nil {
					t.Fatal(err)
				}
				return steps, state(t, tr), tr.Stats()
			}
			wantSteps, wantState, wantStats := run(cfg)
			cfg.LengthBuckets = 2
			gotSteps, gotState, gotStats := run(cfg)
			if len(gotSteps) != len(wantSteps) {
				t.Fatalf("%d steps, want %d", len(gotSteps), len(wantSteps))
			}
			for i := range wantSteps {
				if !closeScalar(gotSteps[i].Loss, wantSteps[i].Loss) || !closeScalar(gotSteps[i].GradNorm, wantSteps[i].GradNorm) ||
					gotSteps[i].Tokens != wantSteps[i].Tokens {
					t.Errorf("step %d: loss %.8g, grad norm %.8g, %d tokens; without buckets %.8g, %.8g, %d", i+1,
						gotSteps[i].Loss, gotSteps[i].GradNorm, gotSteps[i].Tokens, wantSteps[i].Loss, wantSteps[i].GradNorm, wantSteps[i].Tokens)
				}
			}
			compareStates(t, "buckets", gotState, wantState)
			if gotStats.Compiles > 2 || gotStats.Compiles >= wantStats.Compiles {
				t.Errorf("%d compiles with 2 buckets, %d without: want ≤ 2 and fewer", gotStats.Compiles, wantStats.Compiles)
			}
			if gotStats.Tokens != wantStats.Tokens || gotStats.PaddedTokens < wantStats.PaddedTokens {
				t.Errorf("tokens %d (padded %d) with buckets, %d (padded %d) without: want the same tokens, no less padding",
					gotStats.Tokens, gotStats.PaddedTokens, wantStats.Tokens, wantStats.PaddedTokens)
			}
			if gotStats.Executions != len(gotSteps) {
				t.Errorf("%d executions counted for %d single-batch steps", gotStats.Executions, len(gotSteps))
			}
			t.Logf("compiles %d → %d, padded tokens %d → %d (real %d)", wantStats.Compiles, gotStats.Compiles,
				wantStats.PaddedTokens, gotStats.PaddedTokens, gotStats.Tokens)
		})
	}
}

// TestStepInputsPackRoundTrip: unpack(pack(x)) names every input as it was, for each combination of optional ones.
func TestStepInputsPackRoundTrip(t *testing.T) {
	for mask := 0; mask < 8; mask++ {
		has := inputLayout{LR: mask&1 != 0, Positions: mask&2 != 0, Features: mask&4 != 0}
		in := stepInputs[string]{Tokens: "tokens", Targets: "targets", Weights: "weights", SeqLens: "lens", Has: has}
		if has.LR {
			in.LR = "lr"
		}
		if has.Positions {
			in.Positions = "positions"
		}
		if has.Features {
			in.Features = "features"
		}
		got := unpackStepInputs(in.pack(), inputLayout{LR: has.LR, Positions: has.Positions})
		if !reflect.DeepEqual(got, in) {
			t.Errorf("layout %+v: round trip gave %+v, want %+v", has, got, in)
		}
	}
}

// TestExecCounterCountsCompiles: the trainer's counter sees one compile per distinct batch shape of a graph, none
// for shapes it ran before (in another phase too), and one execution per call.
func TestExecCounterCountsCompiles(t *testing.T) {
	cfg := oneStepConfig()
	tr := randomSetup(t, cfg, device.Placement{})
	data := multiTarget(12, llama.Presets["tiny"].VocabSize, cfg.MaxLen, 4, 3)
	var told int
	tr.Counter.OnCompile = func(string, []shapes.Shape) { told++ }
	before := tr.Stats()
	if _, err := tr.EvalLoss(data[:6]); err != nil {
		t.Fatal(err)
	}
	first := tr.Stats()
	if _, err := tr.EvalLoss(data[:6]); err != nil {
		t.Fatal(err)
	}
	second := tr.Stats()
	lengths := make([]int, 6)
	for i := range lengths {
		lengths[i] = len(data[i].Tokens)
	}
	batches := SequentialBatches(lengths, cfg.BatchSize, cfg.PadMultiple, cfg.MaxLen)
	distinct := map[int]bool{}
	for _, b := range batches {
		distinct[b.Len] = true
	}
	if d := first.Sub(before); d.Compiles != len(distinct) || d.Executions != len(batches) || d.CompileSeconds <= 0 {
		t.Errorf("first pass: %+v, want %d compiles (with their time) and %d executions", d, len(distinct), len(batches))
	}
	if d := second.Sub(first); d.Compiles != 0 || d.Executions != len(batches) {
		t.Errorf("second pass over the same shapes: %+v, want 0 compiles and %d executions", d, len(batches))
	}
	if told != len(distinct) {
		t.Errorf("OnCompile told %d times, want %d", told, len(distinct))
	}
	// A fresh counter on the same executors: the shapes are new to it, but the executables exist.
	tr.Counter = &device.ExecCounter{}
	if _, err := tr.EvalLoss(data[:6]); err != nil {
		t.Fatal(err)
	}
	if s := tr.Counter.Snapshot(); s.Compiles != 0 || s.Executions != len(batches) {
		t.Errorf("a fresh counter on compiled executors: %+v, want 0 compiles and %d executions", s, len(batches))
	}
}
