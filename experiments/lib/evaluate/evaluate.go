// Package evaluate answers multiple-choice problems with a frozen LLaMA, with or without an adapter. A Protocol
// (letter, cloze, cloze-norm, cloze-calibrated, generate, ...) prepares its own examples from ScienceQA problems
// through datasets/scienceqa, runs them batched on a Runner and returns pid → choice plus per-choice scores; Run
// evaluates an ordered list of protocols (the first is the primary). The batched executors are Runner's: letter
// scoring (one forward pass; the option letter whose tokens score highest at the answer position), cloze scoring
// (every option's text as a continuation of a prompt, each prompt read once) and greedy generation with the KV
// cache (the paper's protocol). Runner.Stats counts the graphs' compiles and executions and the scoring tokens; Run
// records them per protocol in Result.Profile. With Env.LossExamples the cloze pass also measures the masked loss
// of the training sequences its rows hold (ClozeLoss), so a cloze-target run's validation loss needs no pass of its
// own.
package evaluate

import (
	"context"
	"errors"
	"fmt"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Runner evaluates one model + adapter (the adapter may be nil: the base model).
type Runner struct {
	Model   *llama.Model
	Adapter *adapter.Adapter
	Backend compute.Backend
	// BatchSize, PadMultiple and MaxLen shape the batches (defaults 8, 32, the model's max length).
	BatchSize, PadMultiple, MaxLen int
	// Placement shards letter (and cloze) scoring batches over a device mesh (zero value: one device); see
	// sharding.go. Give it the trainer's Placement: variables keep one mesh.
	Placement device.Placement
	// Progress, when set, is called after each batch of ScoreLetters/OptionScores and Generate with the examples
	// (letter scoring: rows) done so far and their total.
	Progress func(done, total int)
	// Counter counts the compiles and executions of the letter and cloze scoring graphs and of the generators'
	// step graphs (set by the first call when nil; its OnCompile may be set for a "compiling" progress line).
	Counter *device.ExecCounter

	// tokens and paddedTokens are the scoring batches' real and padded tokens so far (Stats).
	tokens, paddedTokens int64

	letterExec *model.Exec
	clozeExec  *model.Exec // cloze.go
	// gens keeps one generator per cache length across calls, so their compiled graphs are reused.
	gens map[int]*llama.Generator
}

// LetterExample is one multiple-choice prompt for letter scoring.
type LetterExample struct {
	ID string
	// Prompt is what every option's answer text starts with (e.g. "... Answer: The answer is").
	Prompt []int32
	// Options holds, for each option in order, the tokens that follow Prompt up to its letter: one token with
	// LLaMA's SentencePiece ("▁A"), sometimes two with small vocabularies (" " then "A", while " B" is one
	// token). At most MaxOptionTokens.
	Options [][]int32
	// Features are the image features (M·D), nil for text-only.
	Features []float32
}

// MaxOptionTokens bounds the tokens of one option's continuation (the window of log-probabilities read per row).
const MaxOptionTokens = 4

func (r *Runner) defaults() {
	if r.BatchSize <= 0 {
		r.BatchSize = 8
	}
	if r.PadMultiple <= 0 {
		r.PadMultiple = 32
	}
	if r.MaxLen <= 0 {
		r.MaxLen = r.Model.Config.MaxSeqLen
	}
	if r.Counter == nil {
		r.Counter = &device.ExecCounter{}
	}
}

// Stats returns the scoring and generation graphs' compiles and executions and the tokens of the scoring batches
// so far (real and padded; generation's tokens are not counted); the difference of two calls is what ran between
// them.
func (r *Runner) Stats() train.Stats {
	return train.Stats{ExecStats: r.Counter.Snapshot(), Tokens: r.tokens, PaddedTokens: r.paddedTokens}
}

// Release frees the runner's compiled graphs (XLA keeps each executable's code until it is finalized; the
// generators' go with their last reference): call it when the runner's evaluation is over. A later call compiles
// them again.
func (r *Runner) Release() {
	for _, e := range []*model.Exec{r.letterExec, r.clozeExec} {
		if e != nil {
			e.Finalize()
		}
	}
	r.letterExec, r.clozeExec, r.gens = nil, nil, nil
}

// DescribeShapes names a scoring graph's input shapes for a progress line: "8×64 tokens" and, for cloze scoring
// (a window of scored positions beside the tokens), ", window 32".
func DescribeShapes(ss []shapes.Shape) string {
	if len(ss) < 2 || ss[0].Rank() != 2 {
		return device.ShapesKey(ss)
	}
	d := ss[0].Dimensions
	s := fmt.Sprintf("%d×%d tokens", d[0], d[1])
	if len(ss) >= 5 && ss[3].Rank() == 2 {
		s += fmt.Sprintf(", window %d", ss[3].Dimensions[1])
	}
	return s
}

// extension returns the adapter's extension for a graph given optional features [B, M, D] (nil: no adapter).
func (r *Runner) extension(g *Graph, features *Node) llama.AttentionExtension {
	if r.Adapter == nil {
		return nil
	}
	return r.Adapter.FeatureExtension(g, features)
}

// errNoProjection: examples carry image features but the runner has no adapter (or no visual projection).
var errNoProjection = errors.New("evaluate: examples carry image features but there is no adapter with a visual projection")

// letterGraph: right-padded tokens [B,S], row lengths [B] (int32), optional features → log-probabilities
// [B, W, V] at each row's last W real positions (W = MaxOptionTokens; positions before 0 repeat position 0).
func (r *Runner) letterGraph(scope *model.Scope, flat []*Node) *Node {
	in := unpackLetterInputs(flat)
	g := in.Tokens.Graph()
	ext := r.extension(g, optionalFeatures(in.Features))
	out := r.Model.Forward(g, llama.Inputs{Tokens: in.Tokens, SeqLens: in.SeqLens, Extension: ext, SkipLogits: true})
	B, W := in.Tokens.Shape().Dimensions[0], MaxOptionTokens
	// Position of window slot w in row b: seqLen[b] - W + w, clamped at 0.
	pos := Add(InsertAxes(in.SeqLens, -1), AddScalar(Iota(g, shapes.Make(dtypes.Int32, B, W), 1), -W))
	pos = Max(pos, ScalarZero(g, dtypes.Int32))
	return LogSoftmax(r.Model.LogitsAt(out.Final, pos, ext), -1)
}

// letterRow is one forward pass: an example's prompt followed by a probe (the longest continuation prefix it
// serves), and the options scored from it.
type letterRow struct {
	example int
	probe   []int32
	options []int
}

// letterRows plans the passes of one example: each option's continuation minus its last token must be a prefix of
// some probe; probes that are prefixes of others are dropped, so the usual cases take one pass.
func letterRows(i int, e LetterExample) ([]letterRow, error) {
	var rows []letterRow
	isPrefix := func(a, b []int32) bool {
		if len(a) > len(b) {
			return false
		}
		for k := range a {
			if a[k] != b[k] {
				return false
			}
		}
		return true
	}
	for o, c := range e.Options {
		if len(c) == 0 || len(c) > MaxOptionTokens {
			return nil, fmt.Errorf("evaluate: example %s: option %d has %d continuation tokens (1..%d)", e.ID, o, len(c), MaxOptionTokens)
		}
		need := c[:len(c)-1]
		placed := false
		for r := range rows {
			if isPrefix(need, rows[r].probe) {
				rows[r].options = append(rows[r].options, o)
				placed = true
				break
			}
			if isPrefix(rows[r].probe, need) {
				rows[r].probe = need
				rows[r].options = append(rows[r].options, o)
				placed = true
				break
			}
		}
		if !placed {
			rows = append(rows, letterRow{example: i, probe: need, options: []int{o}})
		}
	}
	return rows, nil
}

// ScoreLetters returns, for each example, the option whose continuation (its letter) is most probable after the
// prompt (scienceqa.ArgmaxLetter of OptionScores): with single-token letters that is the argmax of the logits over
// the valid option letters, from one forward pass per example.
func (r *Runner) ScoreLetters(ctx context.Context, examples []LetterExample) ([]int, error) {
	scores, err := r.OptionScores(ctx, examples)
	if err != nil {
		return nil, err
	}
	choices := make([]int, len(examples))
	for i, sc := range scores {
		if choices[i], err = scienceqa.ArgmaxLetter(sc, len(sc)); err != nil {
			return nil, fmt.Errorf("evaluate: example %s: %w", examples[i].ID, err)
		}
	}
	return choices, nil
}

// letterPlan is the forward passes of a set of examples: their rows and each row's length.
type letterPlan struct {
	rows    []letterRow
	lengths []int
}

// planLetters checks the examples and plans their rows.
func (r *Runner) planLetters(examples []LetterExample) (letterPlan, error) {
	var p letterPlan
	for i, e := range examples {
		if len(e.Prompt) == 0 {
			return p, fmt.Errorf("evaluate: example %s has an empty prompt", e.ID)
		}
		if len(e.Options) < 2 {
			return p, fmt.Errorf("evaluate: example %s has %d options", e.ID, len(e.Options))
		}
		rs, err := letterRows(i, e)
		if err != nil {
			return p, err
		}
		p.rows = append(p.rows, rs...)
	}
	p.lengths = make([]int, len(p.rows))
	for k, row := range p.rows {
		p.lengths[k] = len(examples[row.example].Prompt) + len(row.probe)
		if p.lengths[k] > r.MaxLen {
			return p, fmt.Errorf("evaluate: example %s has %d prompt tokens (max %d)", examples[row.example].ID, p.lengths[k], r.MaxLen)
		}
	}
	return p, nil
}

// OptionScores returns, for each example and option, the log-probability of the option's continuation tokens
// after the prompt. A cancelled ctx stops it between batches.
func (r *Runner) OptionScores(ctx context.Context, examples []LetterExample) ([][]float64, error) {
	r.defaults()
	if r.letterExec == nil {
		exec, err := r.placedExec("letter scoring graph", r.letterGraph)
		if err != nil {
			return nil, err
		}
		r.letterExec = exec
	}
	plan, err := r.planLetters(examples)
	if err != nil {
		return nil, err
	}
	scores := make([][]float64, len(examples))
	for i, e := range examples {
		scores[i] = make([]float64, len(e.Options))
	}
	done := 0
	for _, b := range train.SequentialBatches(plan.lengths, r.BatchSize, r.PadMultiple, r.MaxLen) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.letterBatch(examples, plan, b, scores); err != nil {
			return nil, err
		}
		if done += len(b.Indices); r.Progress != nil {
			r.Progress(done*len(examples)/len(plan.rows), len(examples))
		}
	}
	return scores, nil
}

// letterBatch runs one batch of rows and stores the scores of the options each row serves.
func (r *Runner) letterBatch(examples []LetterExample, plan letterPlan, b train.Batch, scores [][]float64) error {
	B, S := len(b.Indices), b.Len
	tok := make([]int32, B*S)
	lens := make([]int32, B)
	var feats []float32
	for k, ri := range b.Indices {
		e := examples[plan.rows[ri].example]
		copy(tok[k*S:], e.Prompt)
		copy(tok[k*S+len(e.Prompt):], plan.rows[ri].probe)
		lens[k] = int32(plan.lengths[ri])
		feats = append(feats, e.Features...)
		r.tokens += int64(plan.lengths[ri])
	}
	r.paddedTokens += int64(B * S)
	in := letterInputs[*tensors.Tensor]{Tokens: tensors.FromFlatDataAndDimensions(tok, B, S), SeqLens: tensors.FromFlatDataAndDimensions(lens, B)}
	var err error
	if in.Features, err = r.featureArgs(feats, B); err != nil {
		return fmt.Errorf("evaluate: batch starting at example %s: %w", examples[plan.rows[b.Indices[0]].example].ID, err)
	}
	outs, err := r.runBatch(r.letterExec, in.pack()...)
	if err != nil {
		return err
	}
	logp, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return err
	}
	V, W := r.Model.Config.VocabSize, MaxOptionTokens
	for k, ri := range b.Indices {
		row := plan.rows[ri]
		e := examples[row.example]
		// Window slot of the position that predicts the first continuation token (the prompt's last token).
		first := W - 1 - len(row.probe)
		for _, o := range row.options {
			sum := 0.0
			for j, t := range e.Options[o] {
				if t < 0 || int(t) >= V {
					return fmt.Errorf("evaluate: example %s: option token %d outside the vocabulary", e.ID, t)
				}
				sum += float64(logp[(k*W+first+j)*V+int(t)])
			}
			scores[row.example][o] = sum
		}
	}
	return nil
}

// GenExample is one prompt for free generation.
type GenExample struct {
	ID       string
	Prompt   []int // starts with BOS
	Features []float32
}

// generator returns the runner's generator for a cache length, creating it (and its compiled graphs) once.
func (r *Runner) generator(maxLen int) *llama.Generator {
	if r.gens == nil {
		r.gens = map[int]*llama.Generator{}
	}
	gen, ok := r.gens[maxLen]
	if !ok {
		gen = r.Model.NewGenerator(r.Backend, maxLen, true)
		gen.Counter = r.Counter // counted with the scoring graphs: Run's per-protocol profile shows generation's too
		if r.Adapter != nil {
			gen.Extension = func(g *Graph, extra []*Node) llama.AttentionExtension {
				return r.extension(g, optionalFeatures(extra))
			}
		}
		r.gens[maxLen] = gen
	}
	return gen
}

// Generate continues every prompt greedily for up to maxNew tokens (stopping a row at stop(token) == true, e.g.
// EOS), in batches of examples of similar length, with the KV cache. A cancelled ctx stops every row at its next
// token and Generate returns ctx's error.
func (r *Runner) Generate(ctx context.Context, examples []GenExample, maxNew int, stop func(id int) bool) ([][]int, error) {
	r.defaults()
	lengths := make([]int, len(examples))
	for i, e := range examples {
		lengths[i] = len(e.Prompt)
	}
	out := make([][]int, len(examples))
	done := 0
	for _, b := range train.SequentialBatches(lengths, r.BatchSize, r.PadMultiple, r.MaxLen) {
		gen := r.generator(min(r.MaxLen, r.Model.Config.MaxSeqLen, train.PadLen(b.Len+maxNew, r.PadMultiple, 0)))
		prompts := make([][]int, len(b.Indices))
		var feats []float32
		for row, i := range b.Indices {
			prompts[row] = examples[i].Prompt
			feats = append(feats, examples[i].Features...)
		}
		extra, err := r.featureArgs(feats, len(b.Indices))
		if err != nil {
			return nil, fmt.Errorf("evaluate: generating for %s...: %w", examples[b.Indices[0]].ID, err)
		}
		res, err := gen.Generate(prompts, maxNew, nil, func(row, prev, next int) bool {
			return ctx.Err() == nil && (stop == nil || !stop(next))
		}, extra...)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("evaluate: generating for %s...: %w", examples[b.Indices[0]].ID, err)
		}
		for row, i := range b.Indices {
			out[i] = res[row]
		}
		if done += len(b.Indices); r.Progress != nil {
			r.Progress(done, len(examples))
		}
	}
	return out, nil
}
