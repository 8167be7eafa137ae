package evaluate

import (
	"fmt"
	"math"
	"sort"

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

// ScoreCloze scores every option of every example as a continuation of its prompt, as lm-evaluation-harness
// scores ARC or SciQ: each option is one row (shared prompt + that option's tokens, right-padded), and the rows of
// several examples are packed into one batch of max(BatchSize, most options) rows, examples ordered by length so
// a batch pads little. progress, when not nil, is called with (done, total) after each batch.
func (r *Runner) ScoreCloze(examples []ClozeExample, progress func(done, total int)) ([]ClozeResult, error) {
	r.defaults()
	if r.clozeExec == nil {
		exec, err := r.placedExec(r.clozeGraph)
		if err != nil {
			return nil, fmt.Errorf("evaluate: cloze graph: %w", err)
		}
		r.clozeExec = exec
	}
	R := r.BatchSize
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
		R = max(R, len(e.Options))
	}
	// Examples with image features apart from those without (a batch has features for every row or none), then
	// longest first, so each batch's padded length fits its examples closely.
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
	}
	hasFeat := func(i int) bool { return len(examples[i].Features) > 0 }
	sort.SliceStable(order, func(a, b int) bool {
		if fa, fb := hasFeat(order[a]), hasFeat(order[b]); fa != fb {
			return fa
		}
		return clozeLen(examples[order[a]]) > clozeLen(examples[order[b]])
	})
	res := make([]ClozeResult, len(examples))
	done := 0
	for start := 0; start < len(order); {
		end, rows := start, 0
		for end < len(order) && rows+len(examples[order[end]].Options) <= R && hasFeat(order[end]) == hasFeat(order[start]) {
			rows += len(examples[order[end]].Options)
			end++
		}
		batch := make([]ClozeExample, 0, end-start)
		for _, i := range order[start:end] {
			batch = append(batch, examples[i])
		}
		out, err := r.scoreClozeBatch(batch, R)
		if err != nil {
			return nil, err
		}
		for k, i := range order[start:end] {
			res[i] = out[k]
		}
		done += end - start
		start = end
		if progress != nil {
			progress(done, len(examples))
		}
	}
	return res, nil
}

// clozeLen is the longest row of e: prompt plus its longest option.
func clozeLen(e ClozeExample) int {
	L := 0
	for _, c := range e.Options {
		L = max(L, len(c))
	}
	return len(e.Prompt) + L
}

// scoreClozeBatch scores the examples' options as the first rows of one batch of R rows; spare rows repeat row 0
// and are ignored.
func (r *Runner) scoreClozeBatch(batch []ClozeExample, R int) ([]ClozeResult, error) {
	S, L := 0, 0
	for _, e := range batch {
		S = max(S, clozeLen(e))
		for _, c := range e.Options {
			L = max(L, len(c))
		}
	}
	S = train.PadLen(S, r.PadMultiple, r.MaxLen) // every row was checked to fit MaxLen
	W := (L + clozeWindowMultiple - 1) / clozeWindowMultiple * clozeWindowMultiple
	tok := make([]int32, R*S)
	lens := make([]int32, R)
	pos := make([]int32, R*W)
	tgt := make([]int32, R*W)
	type rowOf struct{ example, option int }
	var rows []rowOf
	for k, e := range batch {
		for o := range e.Options {
			rows = append(rows, rowOf{k, o})
		}
	}
	withFeatures := len(batch[0].Features) > 0
	var feats []float32
	for b := 0; b < R; b++ {
		ro := rows[0]
		if b < len(rows) {
			ro = rows[b]
		}
		e := batch[ro.example]
		if (len(e.Features) > 0) != withFeatures {
			return nil, fmt.Errorf("evaluate: cloze example %s: image features on some examples of a batch only", e.ID)
		}
		c, P := e.Options[ro.option], len(e.Prompt)
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
	args := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(tok, R, S), tensors.FromFlatDataAndDimensions(lens, R),
		tensors.FromFlatDataAndDimensions(pos, R, W), tensors.FromFlatDataAndDimensions(tgt, R, W)}
	if withFeatures {
		if r.Adapter == nil || r.Adapter.Config.Visual == nil {
			return nil, fmt.Errorf("evaluate: cloze example %s has image features but the adapter has no visual projection", batch[0].ID)
		}
		vc := r.Adapter.Config.Visual
		for _, e := range batch {
			if len(e.Features) != vc.Scales*vc.FeatureDim {
				return nil, fmt.Errorf("evaluate: cloze example %s: %d feature values, the visual projection wants %d×%d", e.ID, len(e.Features), vc.Scales, vc.FeatureDim)
			}
		}
		args = append(args, tensors.FromFlatDataAndDimensions(feats, R, vc.Scales, vc.FeatureDim))
	}
	outs, err := r.runBatch(r.clozeExec, args...)
	if err != nil {
		return nil, fmt.Errorf("evaluate: cloze batch starting at example %s: %w", batch[0].ID, err)
	}
	logp, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, fmt.Errorf("evaluate: cloze batch starting at example %s: %w", batch[0].ID, err)
	}
	res := make([]ClozeResult, len(batch))
	b := 0
	for k, e := range batch {
		res[k] = ClozeResult{ID: e.ID, LogProbs: make([]float64, len(e.Options)), Tokens: make([]int, len(e.Options))}
		bestNorm := math.Inf(-1)
		for o, c := range e.Options {
			sum := 0.0
			for w := range c {
				sum += float64(logp[b*W+w])
			}
			b++
			res[k].LogProbs[o], res[k].Tokens[o] = sum, len(c)
			if sum > res[k].LogProbs[res[k].Sum] {
				res[k].Sum = o
			}
			if n := sum / float64(len(c)); n > bestNorm {
				res[k].Norm, bestNorm = o, n
			}
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
