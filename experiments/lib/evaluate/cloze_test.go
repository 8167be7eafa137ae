package evaluate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestScoreClozeBruteForce compares the batched cloze scores with a brute-force reference: one unpadded forward
// pass per (problem, option) over prompt+option, log-softmax of the full logits, summed over the option's
// tokens. Options of 1 to 11 tokens and of different lengths in one problem, shared first tokens, 2- and 5-option
// problems, prompts of 2 to 41 tokens in one batch, a row (prompt and every option) longer than MaxLen, and an
// adapter with random gates and a visual projection (features on some problems only); batches of 8 and of 3
// examples (spare rows, several batches of one kind).
func TestScoreClozeBruteForce(t *testing.T) {
	m := tinyModel(t, 5)
	a := randomAdapter(t, m, 3, true)
	r := &Runner{Model: m, Adapter: a, Backend: device.MustShared(), PadMultiple: 8, MaxLen: 64}
	rng := rand.New(rand.NewPCG(4, 4))
	seq := func(n int) []int32 {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(3 + rng.IntN(250))
		}
		return s
	}
	feats := func() []float32 {
		f := make([]float32, 16)
		for i := range f {
			f[i] = float32(rng.NormFloat64())
		}
		return f
	}
	prompt := func(n int) []int32 { return append([]int32{1}, seq(n)...) }
	ex := []ClozeExample{
		{ID: "lengths", Prompt: prompt(6), Options: [][]int32{{5}, {6, 7}, {8, 9, 10}}, Features: feats()},
		{ID: "five", Prompt: prompt(11), Options: [][]int32{{20, 21}, {20, 22, 23}, seq(1), seq(4), seq(5)}},
		{ID: "long", Prompt: prompt(3), Options: [][]int32{seq(11), seq(2)}, Features: feats()},
		{ID: "equal", Prompt: prompt(20), Options: [][]int32{seq(3), seq(3), seq(3)}},
		{ID: "short", Prompt: prompt(1), Options: [][]int32{seq(1), seq(7)}},
		{ID: "wide", Prompt: prompt(40), Options: [][]int32{seq(2), seq(9), {30}, seq(20), seq(4)}},
		{ID: "two", Prompt: prompt(8), Options: [][]int32{seq(2), seq(2)}, Features: feats()},
		{ID: "tiny", Prompt: prompt(2), Options: [][]int32{{40}, {41}}, Features: feats()},
	}
	var calls [][2]int
	got, err := r.ScoreCloze(context.Background(), ex, func(done, total int) { calls = append(calls, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]int{len(ex), len(ex)} || !slices.IsSortedFunc(calls, func(a, b [2]int) int { return a[0] - b[0] }) {
		t.Errorf("progress calls %v", calls)
	}
	small := &Runner{Model: m, Adapter: a, Backend: r.Backend, PadMultiple: 8, MaxLen: 64, BatchSize: 3}
	gotSmall := scoreCloze(t, small, ex)

	logProbs := bruteForce(t, r)
	V := m.Config.VocabSize
	for i, e := range ex {
		if got[i].ID != e.ID || len(got[i].LogProbs) != len(e.Options) {
			t.Fatalf("result %d: %+v", i, got[i])
		}
		want := make([]float64, len(e.Options))
		bestSum, bestNorm := 0, 0
		for o, c := range e.Options {
			lp := logProbs(append(slices.Clone(e.Prompt), c...), e.Features)
			for j, tok := range c {
				want[o] += float64(lp[(len(e.Prompt)-1+j)*V+int(tok)])
			}
			if math.Abs(got[i].LogProbs[o]-want[o]) > 1e-4 {
				t.Errorf("%s option %d: log-prob %.6f, brute force %.6f", e.ID, o, got[i].LogProbs[o], want[o])
			}
			if math.Abs(gotSmall[i].LogProbs[o]-want[o]) > 1e-4 {
				t.Errorf("%s option %d, batches of 3: log-prob %.6f, brute force %.6f", e.ID, o, gotSmall[i].LogProbs[o], want[o])
			}
			if got[i].Tokens[o] != len(c) {
				t.Errorf("%s option %d: %d tokens, want %d", e.ID, o, got[i].Tokens[o], len(c))
			}
			if want[o] > want[bestSum] {
				bestSum = o
			}
			if want[o]/float64(len(c)) > want[bestNorm]/float64(len(e.Options[bestNorm])) {
				bestNorm = o
			}
		}
		if gotSmall[i].ID != e.ID || gotSmall[i].Sum != got[i].Sum || gotSmall[i].Norm != got[i].Norm {
			t.Errorf("%s: batches of 3 give %+v, of 8 %+v", e.ID, gotSmall[i], got[i])
		}
		if got[i].Sum != bestSum || got[i].Norm != bestNorm {
			t.Errorf("%s: predictions sum %d norm %d, brute force %d %d (log-probs %v)", e.ID, got[i].Sum, got[i].Norm, bestSum, bestNorm, want)
		}
	}
	sum, norm := ClozePredictions(got)
	if len(sum) != len(ex) || sum["five"] != got[1].Sum || norm["long"] != got[2].Norm {
		t.Errorf("ClozePredictions: %v %v", sum, norm)
	}

	// Bad inputs are errors naming the example.
	for _, bad := range [][]ClozeExample{
		{{ID: "one", Prompt: prompt(3), Options: [][]int32{{4}}}},
		{{ID: "empty", Prompt: prompt(3), Options: [][]int32{{4}, {}}}},
		{{ID: "vocab", Prompt: prompt(3), Options: [][]int32{{4}, {int32(V)}}}},
		{{ID: "long", Prompt: prompt(60), Options: [][]int32{{4}, seq(8)}}},
	} {
		if _, err := r.ScoreCloze(context.Background(), bad, nil); err == nil {
			t.Errorf("%s: no error", bad[0].ID)
		}
	}
}

// TestShardedClozeEqualSingleDevice: cloze scoring with a one-device Placement, and on 4 devices (batches of 3
// rows padded to 4; frozen weights replicated, then split), gives the unplaced log-probabilities within 1e-4.
func TestShardedClozeEqualSingleDevice(t *testing.T) {
	b := device.MustShared()
	examples := fiveClozeExamples()
	scores := func(devices string, shard bool) []ClozeResult {
		m := tinyModel(t, 4)
		r := &Runner{Model: m, Adapter: randomAdapter(t, m, 2, false), Backend: b, BatchSize: 3, PadMultiple: 8}
		if devices != "" {
			var err error
			if r.Placement, err = device.NewPlacement(b, devices, shard); err != nil {
				t.Fatal(err)
			}
		}
		return scoreCloze(t, r, examples)
	}
	want := scores("", false)
	type run struct {
		devices string
		shard   bool
	}
	runs := []run{{"1", false}}
	if b.NumDevices() >= 4 {
		runs = append(runs, run{"4", false}, run{"4", true})
	} else {
		t.Logf("backend %s has %d device(s): the 4-device runs need 4 (the XLA CPU plugin exposes 4)", b.Name(), b.NumDevices())
	}
	for _, c := range runs {
		got := scores(c.devices, c.shard)
		for i := range want {
			for o := range want[i].LogProbs {
				if d := math.Abs(got[i].LogProbs[o] - want[i].LogProbs[o]); d > 1e-4*math.Abs(want[i].LogProbs[o])+1e-6 {
					t.Errorf("%s devices, split weights %v: example %s option %d: %v vs %v unplaced", c.devices, c.shard, want[i].ID, o, got[i].LogProbs[o], want[i].LogProbs[o])
				}
			}
		}
	}
}

// TestClozeFollow scores tokens after one option (ClozeExample.Follow) in the same pass: every option's score
// stays what the pass without follow tokens gives (the follow tokens sit after every option, which cannot see
// them), and the followed option's tokens and the follow tokens get the per-token log-probabilities of a brute-force
// unpadded pass over prompt + option + follow tokens.
func TestClozeFollow(t *testing.T) {
	m := tinyModel(t, 5)
	a := randomAdapter(t, m, 3, false)
	r := &Runner{Model: m, Adapter: a, Backend: device.MustShared(), PadMultiple: 8, MaxLen: 64, BatchSize: 4}
	plain := fiveClozeExamples()
	followed := slices.Clone(plain)
	followed[0].Follow = &ClozeFollow{Option: 1, Tokens: []int32{2}}
	followed[1].Follow = &ClozeFollow{Option: 0, Tokens: []int32{2, 17}}
	followed[2].Follow = &ClozeFollow{Option: 3} // no follow tokens: the option's per-token scores only
	followed[4].Follow = &ClozeFollow{Option: 0, Tokens: []int32{2}}
	want, got := scoreCloze(t, r, plain), scoreCloze(t, r, followed)
	logProbs := bruteForce(t, r)
	V := m.Config.VocabSize
	for i, e := range followed {
		if got[i].Sum != want[i].Sum || got[i].Norm != want[i].Norm {
			t.Errorf("%s: choices %d/%d with follow tokens, %d/%d without", e.ID, got[i].Sum, got[i].Norm, want[i].Sum, want[i].Norm)
		}
		for o := range e.Options {
			if d := math.Abs(got[i].LogProbs[o] - want[i].LogProbs[o]); d > 1e-6 {
				t.Errorf("%s option %d: %.7f with follow tokens, %.7f without", e.ID, o, got[i].LogProbs[o], want[i].LogProbs[o])
			}
		}
		if e.Follow == nil {
			if got[i].Follow != nil {
				t.Errorf("%s: follow scores %v without follow tokens", e.ID, got[i].Follow)
			}
			continue
		}
		opt := e.Options[e.Follow.Option]
		cont := append(slices.Clone(opt), e.Follow.Tokens...)
		lp := logProbs(append(slices.Clone(e.Prompt), cont...), nil)
		if len(got[i].Follow) != len(cont) {
			t.Fatalf("%s: %d follow scores, want %d", e.ID, len(got[i].Follow), len(cont))
		}
		optSum := 0.0
		for j, tok := range cont {
			w := float64(lp[(len(e.Prompt)-1+j)*V+int(tok)])
			if math.Abs(got[i].Follow[j]-w) > 1e-4 {
				t.Errorf("%s follow token %d: %.6f, brute force %.6f", e.ID, j, got[i].Follow[j], w)
			}
			if j < len(opt) {
				optSum += got[i].Follow[j]
			}
		}
		if math.Abs(optSum-got[i].LogProbs[e.Follow.Option]) > 1e-9 {
			t.Errorf("%s: the followed option's per-token scores sum to %v, its score is %v", e.ID, optSum, got[i].LogProbs[e.Follow.Option])
		}
	}
	bad := []ClozeExample{{ID: "bad", Prompt: []int32{1, 2}, Options: [][]int32{{3}, {4}}, Follow: &ClozeFollow{Option: 2}}}
	if _, err := r.ScoreCloze(context.Background(), bad, nil); err == nil {
		t.Error("a follow option out of range: no error")
	}
}

// fiveClozeExamples are five problems of 2 to 4 options of 1 to 4 tokens after prompts of 2 to 7 tokens.
func fiveClozeExamples() []ClozeExample {
	return []ClozeExample{
		{ID: "a", Prompt: []int32{1, 20, 30, 40, 50}, Options: [][]int32{{3}, {4, 5}, {5}}},
		{ID: "b", Prompt: []int32{1, 21, 31}, Options: [][]int32{{3, 7, 9}, {4}}},
		{ID: "c", Prompt: []int32{1, 22, 32, 42, 52, 62, 72}, Options: [][]int32{{3}, {4}, {5}, {6, 8}}},
		{ID: "d", Prompt: []int32{1, 23}, Options: [][]int32{{3}, {4}}},
		{ID: "e", Prompt: []int32{1, 24, 34, 44}, Options: [][]int32{{9, 10, 11, 12}, {13}}},
	}
}

// scoreCloze is r.ScoreCloze(ex) without progress; an error fails the test.
func scoreCloze(t *testing.T, r *Runner, ex []ClozeExample) []ClozeResult {
	t.Helper()
	res, err := r.ScoreCloze(context.Background(), ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// bruteForce returns the reference the cloze tests check ScoreCloze against: the log-softmax [len(seq)·V] of the
// model with r's adapter over one unpadded sequence, with image features [Scales·FeatureDim] or none (nil).
func bruteForce(t *testing.T, r *Runner) func(seq []int32, features []float32) []float32 {
	t.Helper()
	ref, err := model.NewExec(r.Backend, r.Model.Store, func(scope *model.Scope, inputs []*Node) *Node {
		var f *Node
		if len(inputs) > 1 {
			f = inputs[1]
		}
		g := inputs[0].Graph()
		return LogSoftmax(r.Model.Forward(g, llama.Inputs{Tokens: inputs[0], Extension: r.extension(g, f)}).Logits, -1)
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(seq []int32, features []float32) []float32 {
		t.Helper()
		args := []any{tensors.FromFlatDataAndDimensions(seq, 1, len(seq))}
		if features != nil {
			v := r.Adapter.Config.Visual
			args = append(args, tensors.FromFlatDataAndDimensions(features, 1, v.Scales, v.FeatureDim))
		}
		out, err := ref.Exec(args...)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
}
