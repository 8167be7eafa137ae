package evaluate

import (
	"context"
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
	// Follow, when not nil, also scores tokens after one option (e.g. the EOS a training sequence ends with), in
	// that option's segment of the row: ClozeResult.Follow then holds the log-probability of every token of
	// option Follow.Option followed by Follow.Tokens, each given the prompt and the tokens before it. The follow
	// tokens sit at the row's end, after every option, so no option's score changes.
	Follow *ClozeFollow
}

// ClozeFollow is tokens scored after one option of a cloze example (ClozeExample.Follow).
type ClozeFollow struct {
	Option int
	Tokens []int32
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
	// Follow holds, with ClozeExample.Follow, the per-token log-probabilities of the followed option's tokens and
	// then of the follow tokens.
	Follow []float64
}

// clozeWindowMultiple rounds a batch's scored window up, so few distinct graph shapes are compiled (the row length
// is rounded to PadMultiple).
const clozeWindowMultiple = 32

// Segment ids of clozeGraph's rows: option o's tokens carry o.
const (
	clozeSegPrompt  = -2
	clozeSegPadding = -1
)

// clozeGraph scores all the options of G problems in one pass, each prompt read once. A row is one problem: its
// prompt (P tokens), then its options one after another, then right padding. Inputs (int32): tokens [G,S], each
// token's segment [G,S] (clozeSegPrompt, the option's index, or clozeSegPadding) and rotary position [G,S] (i for
// prompt token i, P+j for token j of an option), and the scored window: source positions [G,W] and targets
// [G,W]; optional image features [G,M,D]. Output: [G,W] log-probability of targets[g,w] predicted at
// positions[g,w].
//
// Attention is causal and a query sees, besides itself, only prompt keys and the earlier keys of its own segment:
// token j of an option attends exactly the prompt and the option's tokens before it, at the same rotary positions
// as in an unpadded prompt+option pass, so its state is that pass's (up to float rounding). Only the W window
// states go through the output projection, so the vocabulary-wide logits are never [B,S,V].
func (r *Runner) clozeGraph(scope *model.Scope, flat []*Node) *Node {
	in := unpackClozeInputs(flat)
	g := in.Tokens.Graph()
	tokens, seg := in.Tokens, in.Segments
	G, S := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
	keySeg := BroadcastToDims(InsertAxes(seg, 1), G, S, S) // [G, query, key]
	mask := LogicalOr(Equal(keySeg, Scalar(g, dtypes.Int32, clozeSegPrompt)), Equal(keySeg, InsertAxes(seg, -1)))
	ext := r.extension(g, optionalFeatures(in.Features))
	out := r.Model.Forward(g, llama.Inputs{Tokens: tokens, Positions: in.Rotary, AttentionMask: mask,
		Extension: ext, SkipLogits: true})
	W := in.Positions.Shape().Dimensions[1]
	logp := LogSoftmax(r.Model.LogitsAt(out.Final, in.Positions, ext), -1) // [G, W, V]
	rows := Iota(g, shapes.Make(dtypes.Int32, G, W), 0)
	cols := Iota(g, shapes.Make(dtypes.Int32, G, W), 1)
	return Gather(logp, Concatenate([]*Node{InsertAxes(rows, -1), InsertAxes(cols, -1), InsertAxes(in.Targets, -1)}, -1))
}

// ScoreCloze scores every option of every example as a continuation of its prompt, as lm-evaluation-harness
// scores ARC or SciQ, reading each prompt once: a batch holds BatchSize examples (ordered by prompt length, so a
// batch pads little, with image features apart); an example is one row, its prompt followed by all its options,
// each option attending only the prompt and itself (clozeGraph). progress, when not nil, is called with (done,
// total) after each batch; a cancelled ctx stops it between batches.
func (r *Runner) ScoreCloze(ctx context.Context, examples []ClozeExample, progress func(done, total int)) ([]ClozeResult, error) {
	r.defaults()
	if r.clozeExec == nil {
		exec, err := r.placedExec("cloze scoring graph", r.clozeGraph)
		if err != nil {
			return nil, fmt.Errorf("evaluate: cloze graph: %w", err)
		}
		r.clozeExec = exec
	}
	if err := r.checkCloze(examples); err != nil {
		return nil, err
	}
	// Examples with image features apart from those without (a batch has features for every example or none),
	// then longest row first, so each batch's padded length fits its examples closely.
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
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := start
		for end < len(order) && end-start < r.BatchSize && hasFeat(order[end]) == hasFeat(order[start]) {
			end++
		}
		batch := make([]ClozeExample, 0, end-start)
		for _, i := range order[start:end] {
			batch = append(batch, examples[i])
		}
		out, err := r.scoreClozeBatch(batch)
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

// checkCloze checks the examples' prompts, option counts and tokens, and that every option fits in MaxLen.
func (r *Runner) checkCloze(examples []ClozeExample) error {
	V := r.Model.Config.VocabSize
	for _, e := range examples {
		if len(e.Prompt) == 0 {
			return fmt.Errorf("evaluate: cloze example %s has an empty prompt", e.ID)
		}
		if len(e.Options) < 2 {
			return fmt.Errorf("evaluate: cloze example %s has %d options", e.ID, len(e.Options))
		}
		for o, c := range e.Options {
			if len(c) == 0 {
				return fmt.Errorf("evaluate: cloze example %s: option %d has no tokens", e.ID, o)
			}
			// The rotary positions of a row stop at the prompt plus its longest option (the row may be longer).
			if n := len(e.Prompt) + len(c); n > r.MaxLen {
				return fmt.Errorf("evaluate: cloze example %s: option %d makes %d tokens (max %d)", e.ID, o, n, r.MaxLen)
			}
			for _, t := range c {
				if t < 0 || int(t) >= V {
					return fmt.Errorf("evaluate: cloze example %s: option %d token %d outside the vocabulary", e.ID, o, t)
				}
			}
		}
		if f := e.Follow; f != nil {
			if f.Option < 0 || f.Option >= len(e.Options) {
				return fmt.Errorf("evaluate: cloze example %s: follow option %d of %d", e.ID, f.Option, len(e.Options))
			}
			if n := len(e.Prompt) + len(e.Options[f.Option]) + len(f.Tokens); n > r.MaxLen {
				return fmt.Errorf("evaluate: cloze example %s: option %d and its follow tokens make %d tokens (max %d)", e.ID, f.Option, n, r.MaxLen)
			}
			for _, t := range f.Tokens {
				if t < 0 || int(t) >= V {
					return fmt.Errorf("evaluate: cloze example %s: follow token %d outside the vocabulary", e.ID, t)
				}
			}
		}
	}
	return nil
}

// clozeLen is the length of e's row: prompt, every option and the follow tokens.
func clozeLen(e ClozeExample) int {
	n := len(e.Prompt)
	for _, c := range e.Options {
		n += len(c)
	}
	if e.Follow != nil {
		n += len(e.Follow.Tokens)
	}
	return n
}

// scoreClozeBatch scores the examples of one batch of BatchSize rows; spare rows repeat example 0 and are ignored.
func (r *Runner) scoreClozeBatch(batch []ClozeExample) ([]ClozeResult, error) {
	S, L := 0, 0
	for _, e := range batch {
		S = max(S, clozeLen(e))
		L = max(L, clozeLen(e)-len(e.Prompt)) // every option's tokens and the follow tokens are scored
	}
	G := r.BatchSize
	// Not capped at MaxLen: positions were checked to stay below it, but a row holds every option.
	S = train.PadLen(S, r.PadMultiple, 0)
	W := (L + clozeWindowMultiple - 1) / clozeWindowMultiple * clozeWindowMultiple
	tok, seg, rot := make([]int32, G*S), make([]int32, G*S), make([]int32, G*S)
	pos, tgt := make([]int32, G*W), make([]int32, G*W)
	withFeatures := len(batch[0].Features) > 0
	var feats []float32
	for k := 0; k < G; k++ {
		e := batch[0]
		if k < len(batch) {
			e = batch[k]
		}
		if (len(e.Features) > 0) != withFeatures {
			return nil, fmt.Errorf("evaluate: cloze example %s: image features on some examples of a batch only", e.ID)
		}
		P, i, w := len(e.Prompt), k*S, k*W
		for j, t := range e.Prompt {
			tok[i], seg[i], rot[i] = t, clozeSegPrompt, int32(j)
			i++
		}
		for o, c := range e.Options {
			for j, t := range c {
				// Token j is predicted by the prompt's last state (j = 0) or by the option's previous token.
				pos[w], tgt[w] = int32(P-1), t
				if j > 0 {
					pos[w] = int32(i - k*S - 1)
				}
				tok[i], seg[i], rot[i] = t, int32(o), int32(P+j)
				i, w = i+1, w+1
			}
		}
		if f := e.Follow; f != nil {
			// After every option: the followed option's segment continues at its rotary positions; the causal
			// mask keeps every option's tokens from seeing these.
			n := len(e.Options[f.Option])
			for j, t := range f.Tokens {
				pos[w], tgt[w] = int32(i-k*S-1), t
				if j == 0 {
					pos[w] = int32(optionEnd(e, f.Option) - 1)
				}
				tok[i], seg[i], rot[i] = t, int32(f.Option), int32(P+n+j)
				i, w = i+1, w+1
			}
		}
		for ; i < (k+1)*S; i++ {
			seg[i], rot[i] = clozeSegPadding, int32(i-k*S)
		}
		feats = append(feats, e.Features...)
		if k < len(batch) {
			r.tokens += int64(clozeLen(e))
		}
	}
	r.paddedTokens += int64(G * S)
	in := clozeInputs[*tensors.Tensor]{Tokens: tensors.FromFlatDataAndDimensions(tok, G, S), Segments: tensors.FromFlatDataAndDimensions(seg, G, S),
		Rotary: tensors.FromFlatDataAndDimensions(rot, G, S), Positions: tensors.FromFlatDataAndDimensions(pos, G, W),
		Targets: tensors.FromFlatDataAndDimensions(tgt, G, W)}
	var err error
	if in.Features, err = r.featureArgs(feats, G); err != nil {
		return nil, fmt.Errorf("evaluate: cloze batch starting at example %s: %w", batch[0].ID, err)
	}
	outs, err := r.runBatch(r.clozeExec, in.pack()...)
	if err != nil {
		return nil, fmt.Errorf("evaluate: cloze batch starting at example %s: %w", batch[0].ID, err)
	}
	logp, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, fmt.Errorf("evaluate: cloze batch starting at example %s: %w", batch[0].ID, err)
	}
	return clozeResults(batch, logp, W), nil
}

// optionEnd is the row position after option o's last token (the prompt, then the options in order).
func optionEnd(e ClozeExample, o int) int {
	n := len(e.Prompt)
	for _, c := range e.Options[:o+1] {
		n += len(c)
	}
	return n
}

// clozeResults reads each example's option scores from a batch's window log-probabilities (W per row, the
// options' tokens in order, then the follow tokens).
func clozeResults(batch []ClozeExample, logp []float32, W int) []ClozeResult {
	res := make([]ClozeResult, len(batch))
	for k, e := range batch {
		res[k] = ClozeResult{ID: e.ID, LogProbs: make([]float64, len(e.Options)), Tokens: make([]int, len(e.Options))}
		bestNorm := math.Inf(-1)
		slot := k * W
		var per [][]float64 // each option's per-token log-probabilities, kept with a follow
		if e.Follow != nil {
			per = make([][]float64, len(e.Options))
		}
		for o, c := range e.Options {
			sum := 0.0
			for range c {
				sum += float64(logp[slot])
				if per != nil {
					per[o] = append(per[o], float64(logp[slot]))
				}
				slot++
			}
			res[k].LogProbs[o], res[k].Tokens[o] = sum, len(c)
			if sum > res[k].LogProbs[res[k].Sum] {
				res[k].Sum = o
			}
			if n := sum / float64(len(c)); n > bestNorm {
				res[k].Norm, bestNorm = o, n
			}
		}
		if f := e.Follow; f != nil {
			res[k].Follow = per[f.Option]
			for range f.Tokens {
				res[k].Follow = append(res[k].Follow, float64(logp[slot]))
				slot++
			}
		}
	}
	return res
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
