package evaluate

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestLetterScoringAgreesWithGeneration forces the answer: each example's options include the token that greedy
// generation picks first, so letter scoring must choose that option. Prompts of different lengths share batches
// (padding), the adapter has random (non-zero) gates and a visual projection fed with per-example features.
func TestLetterScoringAgreesWithGeneration(t *testing.T) {
	m, err := llama.Load(assets.Require(t, assets.Golden("llama_tiny")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Model: m, Adapter: randomAdapter(t, m, 3, true), Backend: device.MustShared(), BatchSize: 3, PadMultiple: 8, MaxLen: 64}
	rng := rand.New(rand.NewPCG(9, 9))
	var gens []GenExample
	for i := 0; i < 7; i++ {
		p := []int{1}
		for j := 0; j < 3+rng.IntN(14); j++ {
			p = append(p, 3+rng.IntN(250))
		}
		f := make([]float32, 16)
		for k := range f {
			f[k] = float32(rng.NormFloat64())
		}
		gens = append(gens, GenExample{ID: string(rune('a' + i)), Prompt: p, Features: f})
	}
	out, err := r.Generate(context.Background(), gens, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	var letters []LetterExample
	var want []int
	for i, g := range gens {
		if len(out[i]) != 3 {
			t.Fatalf("example %d: %d tokens generated, want 3", i, len(out[i]))
		}
		first := int32(out[i][0])
		opts := [][]int32{{(first + 1) % 256}, {(first + 7) % 256}, {(first + 13) % 256}}
		pos := i % 3
		opts[pos] = []int32{first}
		want = append(want, pos)
		prompt := make([]int32, len(g.Prompt))
		for j, id := range g.Prompt {
			prompt[j] = int32(id)
		}
		letters = append(letters, LetterExample{ID: g.ID, Prompt: prompt, Options: opts, Features: g.Features})
	}
	got, err := r.ScoreLetters(context.Background(), letters)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("example %d: letter scoring chose option %d, generation's token is option %d", i, got[i], want[i])
		}
	}
	// A single-example batch must give the same generation as the padded batch.
	solo, err := r.Generate(context.Background(), gens[3:4], 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range solo[0] {
		if solo[0][k] != out[3][k] {
			t.Errorf("padding changed generation: %v alone vs %v in a batch", solo[0], out[3])
			break
		}
	}
}

// TestOptionScoresMultiToken checks option scores against teacher-forced log-likelihoods computed from full-sequence
// logits, for options of one and two tokens that need different probes.
func TestOptionScoresMultiToken(t *testing.T) {
	m, err := llama.Load(assets.Require(t, assets.Golden("llama_tiny")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Model: m, Backend: device.MustShared(), BatchSize: 4, PadMultiple: 8, MaxLen: 64}
	prompt := []int32{1, 40, 41, 42, 43, 44}
	ex := []LetterExample{
		{ID: "x", Prompt: prompt, Options: [][]int32{{10, 11}, {10, 12}, {13}, {14, 15, 16}}},
		{ID: "y", Prompt: prompt[:4], Options: [][]int32{{7}, {8}}},
	}
	scores, err := r.OptionScores(context.Background(), ex)
	if err != nil {
		t.Fatal(err)
	}
	logp := func(seq []int32) [][]float64 { // per position log-softmax of full-sequence logits
		out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens *Node) *Node {
			return LogSoftmax(m.Forward(tokens.Graph(), llama.Inputs{Tokens: tokens}).Logits, -1)
		}, [][]int32{seq})
		if err != nil {
			t.Fatal(err)
		}
		flat := tensors.MustCopyFlatData[float32](out[0])
		V := m.Config.VocabSize
		var rows [][]float64
		for s := 0; s < len(seq); s++ {
			row := make([]float64, V)
			for v := range row {
				row[v] = float64(flat[s*V+v])
			}
			rows = append(rows, row)
		}
		return rows
	}
	for i, e := range ex {
		for o, c := range e.Options {
			seq := append(append([]int32{}, e.Prompt...), c...)
			lp := logp(seq)
			want := 0.0
			for j, tokID := range c {
				want += lp[len(e.Prompt)-1+j][tokID]
			}
			if math.Abs(scores[i][o]-want) > 1e-4 {
				t.Errorf("example %s option %d: score %.6f, want %.6f", e.ID, o, scores[i][o], want)
			}
		}
	}
}
