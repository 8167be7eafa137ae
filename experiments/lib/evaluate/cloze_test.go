package evaluate

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestScoreClozeBruteForce compares the batched cloze scores with a brute-force reference: one unpadded forward
// pass per (problem, option) over prompt+option, log-softmax of the full logits, summed over the option's
// tokens. Options of 1 to 11 tokens and of different lengths in one problem, shared first tokens, a 5-option
// problem, and an adapter with random gates and a visual projection (features on some problems only).
func TestScoreClozeBruteForce(t *testing.T) {
	m, err := llama.RandomModel(llama.Presets["tiny"], dtypes.Float32, 5)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapter.New(m.Store, adapter.Config{Layers: 2, PromptLen: 4, Init: adapter.InitRandom, Seed: 3,
		Visual: &adapter.VisualConfig{Scales: 2, FeatureDim: 8}}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
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
	}
	var calls [][2]int
	got, err := r.ScoreCloze(ex, func(done, total int) { calls = append(calls, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]int{len(ex), len(ex)} || !slices.IsSortedFunc(calls, func(a, b [2]int) int { return a[0] - b[0] }) {
		t.Errorf("progress calls %v", calls)
	}

	ref, err := model.NewExec(r.Backend, m.Store, func(scope *model.Scope, inputs []*Node) *Node {
		var f *Node
		if len(inputs) > 1 {
			f = inputs[1]
		}
		g := inputs[0].Graph()
		return LogSoftmax(m.Forward(g, llama.Inputs{Tokens: inputs[0], Extension: r.extension(g, f)}).Logits, -1)
	})
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	for i, e := range ex {
		if got[i].ID != e.ID || len(got[i].LogProbs) != len(e.Options) {
			t.Fatalf("result %d: %+v", i, got[i])
		}
		want := make([]float64, len(e.Options))
		bestSum, bestNorm := 0, 0
		for o, c := range e.Options {
			s := append(append([]int32{}, e.Prompt...), c...)
			args := []any{tensors.FromFlatDataAndDimensions(s, 1, len(s))}
			if e.Features != nil {
				args = append(args, tensors.FromFlatDataAndDimensions(e.Features, 1, 2, 8))
			}
			out, err := ref.Exec(args...)
			if err != nil {
				t.Fatal(err)
			}
			lp := tensors.MustCopyFlatData[float32](out[0])
			for j, tok := range c {
				want[o] += float64(lp[(len(e.Prompt)-1+j)*V+int(tok)])
			}
			if math.Abs(got[i].LogProbs[o]-want[o]) > 1e-4 {
				t.Errorf("%s option %d: log-prob %.6f, brute force %.6f", e.ID, o, got[i].LogProbs[o], want[o])
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
		if _, err := r.ScoreCloze(bad, nil); err == nil {
			t.Errorf("%s: no error", bad[0].ID)
		}
	}
}
