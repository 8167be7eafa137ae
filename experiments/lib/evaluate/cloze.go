package evaluate

import (
	"fmt"
	"math"

	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// ClozeExample is one problem for cloze scoring: the options are scored as continuations of a prompt that does
// not list them (datasets/scienceqa's TokenizeCloze builds both).
type ClozeExample struct {
	ID string
	// Prompt is BOS followed by the prompt's tokens.
	Prompt []int32
	// Options holds each option's continuation tokens (at least one each).
	Options [][]int32
	// Features are the image features (M·D), nil for text-only.
	Features []float32
}

// ClozeResult is one problem's cloze scores and both predictions.
type ClozeResult struct {
	ID string
	// LogProbs[o] is the summed log-probability of option o's tokens after the prompt; Tokens[o] their count.
	LogProbs []float64
	Tokens   []int
	// Sum is the option of highest LogProbs ("cloze"); Norm the option of highest LogProbs/Tokens, the mean
	// log-probability per token ("cloze-norm", length-normalized per token, not per character). Ties go to the
	// first option.
	Sum, Norm int
}

// clozeWindowMultiple rounds the scored window up, so few distinct graph shapes are compiled.
const clozeWindowMultiple = 8

// clozeGraph: right-padded tokens [B,S], row lengths [B], positions [B,W] and targets [B,W] (int32), optional
// features [B,M,D] → [B,W] log-probability of targets[b,w] predicted at positions[b,w]. Only the W gathered
// positions go through the output projection, so the vocabulary-wide logits are never [B,S,V].
func (r *Runner) clozeGraph(scope *model.Scope, inputs []*Node) *Node {
	g := inputs[0].Graph()
	tokens, seqLens, pos, targets := inputs[0], inputs[1], inputs[2], inputs[3]
	var feats *Node
	if len(inputs) > 4 {
		feats = inputs[4]
	}
	out := r.Model.Forward(g, llama.Inputs{Tokens: tokens, SeqLens: seqLens, Extension: r.extension(g, feats), SkipLogits: true})
	B, W := pos.Shape().Dimensions[0], pos.Shape().Dimensions[1]
	rows := Iota(g, shapes.Make(dtypes.Int32, B, W), 0)
	final := Gather(out.Final, Concatenate([]*Node{InsertAxes(rows, -1), InsertAxes(pos, -1)}, -1)) // [B, W, C]
	logp := LogSoftmax(r.Model.LogitsFromFinal(final), -1)                                          // [B, W, V]
	cols := Iota(g, shapes.Make(dtypes.Int32, B, W), 1)
	idx := Concatenate([]*Node{InsertAxes(rows, -1), InsertAxes(cols, -1), InsertAxes(targets, -1)}, -1)
	return Gather(logp, idx) // [B, W]
}

// ScoreCloze scores every option of every example as a continuation of its prompt: one forward pass per
// example, its options as the rows of one right-padded batch (as lm-evaluation-harness scores ARC or SciQ).
// progress, when not nil, is called with (done, total) after each example.
func (r *Runner) ScoreCloze(examples []ClozeExample, progress func(done, total int)) ([]ClozeResult, error) {
	r.defaults()
	if r.clozeExec == nil {
		exec, err := model.NewExec(r.Backend, r.Model.Store, r.clozeGraph)
		if err != nil {
			return nil, fmt.Errorf("evaluate: cloze graph: %w", err)
		}
		exec.SetMaxCache(64)
		r.clozeExec = exec
	}
	// Every batch has as many rows as the example with the most options (ScienceQA: 5), so the batch dimension
	// does not multiply the compiled shapes; the spare rows repeat row 0 and are ignored.
	B := 0
	V := r.Model.Config.VocabSize
	for _, e := range examples {
		if len(e.Prompt) == 0 {
			return nil, fmt.Errorf("evaluate: cloze example %s has an empty prompt", e.ID)
		}
		if len(e.Options) < 2 {
			return nil, fmt.Errorf("evaluate: cloze example %s has %d options", e.ID, len(e.Options))
		}
		for o, c := range e.Options {
			if len(c) == 0 {
				return nil, fmt.Errorf("evaluate: cloze example %s: option %d has no tokens", e.ID, o)
			}
			if n := len(e.Prompt) + len(c); n > r.MaxLen {
				return nil, fmt.Errorf("evaluate: cloze example %s: option %d makes %d tokens (max %d)", e.ID, o, n, r.MaxLen)
			}
			for _, t := range c {
				if t < 0 || int(t) >= V {
					return nil, fmt.Errorf("evaluate: cloze example %s: option %d token %d outside the vocabulary", e.ID, o, t)
				}
			}
		}
		B = max(B, len(e.Options))
	}
	res := make([]ClozeResult, len(examples))
	for i, e := range examples {
		var err error
		if res[i], err = r.scoreClozeExample(e, B); err != nil {
			return nil, err
		}
		if progress != nil {
			progress(i+1, len(examples))
		}
	}
	return res, nil
}

func (r *Runner) scoreClozeExample(e ClozeExample, B int) (ClozeResult, error) {
	P, L := len(e.Prompt), 0
	for _, c := range e.Options {
		L = max(L, len(c))
	}
	S := train.PadLen(P+L, r.PadMultiple, r.MaxLen) // P+L <= MaxLen was checked
	W := (L + clozeWindowMultiple - 1) / clozeWindowMultiple * clozeWindowMultiple
	tok := make([]int32, B*S)
	lens := make([]int32, B)
	pos := make([]int32, B*W)
	tgt := make([]int32, B*W)
	var feats []float32
	for b := 0; b < B; b++ {
		c := e.Options[0] // spare rows repeat option 0
		if b < len(e.Options) {
			c = e.Options[b]
		}
		copy(tok[b*S:], e.Prompt)
		copy(tok[b*S+P:], c)
		lens[b] = int32(P + len(c))
		// Token c[w] is predicted by the logits at position P-1+w; spare window slots read position 0.
		for w, t := range c {
			pos[b*W+w] = int32(P - 1 + w)
			tgt[b*W+w] = t
		}
		feats = append(feats, e.Features...)
	}
	args := []any{tensors.FromFlatDataAndDimensions(tok, B, S), tensors.FromFlatDataAndDimensions(lens, B),
		tensors.FromFlatDataAndDimensions(pos, B, W), tensors.FromFlatDataAndDimensions(tgt, B, W)}
	if len(feats) > 0 {
		if r.Adapter == nil || r.Adapter.Config.Visual == nil {
			return ClozeResult{}, fmt.Errorf("evaluate: cloze example %s has image features but the adapter has no visual projection", e.ID)
		}
		vc := r.Adapter.Config.Visual
		if len(e.Features) != vc.Scales*vc.FeatureDim {
			return ClozeResult{}, fmt.Errorf("evaluate: cloze example %s: %d feature values, the visual projection wants %d×%d", e.ID, len(e.Features), vc.Scales, vc.FeatureDim)
		}
		args = append(args, tensors.FromFlatDataAndDimensions(feats, B, vc.Scales, vc.FeatureDim))
	}
	outs, err := r.clozeExec.Exec(args...)
	if err != nil {
		return ClozeResult{}, fmt.Errorf("evaluate: cloze example %s: %w", e.ID, err)
	}
	logp, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return ClozeResult{}, fmt.Errorf("evaluate: cloze example %s: %w", e.ID, err)
	}
	res := ClozeResult{ID: e.ID, LogProbs: make([]float64, len(e.Options)), Tokens: make([]int, len(e.Options))}
	bestNorm := math.Inf(-1)
	for o, c := range e.Options {
		sum := 0.0
		for w := range c {
			sum += float64(logp[o*W+w])
		}
		res.LogProbs[o], res.Tokens[o] = sum, len(c)
		if sum > res.LogProbs[res.Sum] {
			res.Sum = o
		}
		if n := sum / float64(len(c)); n > bestNorm {
			res.Norm, bestNorm = o, n
		}
	}
	return res, nil
}

// ClozePredictions maps each result's ID to its two predictions: by summed ("cloze") and by per-token mean
// ("cloze-norm") log-probability.
func ClozePredictions(results []ClozeResult) (sum, norm map[string]int) {
	sum, norm = make(map[string]int, len(results)), make(map[string]int, len(results))
	for _, r := range results {
		sum[r.ID], norm[r.ID] = r.Sum, r.Norm
	}
	return sum, norm
}
