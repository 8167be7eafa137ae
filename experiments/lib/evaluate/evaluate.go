// Package evaluate runs a frozen LLaMA with an adapter over multiple-choice prompts, in the two protocols the
// toolkit reports: letter scoring (one forward pass; the answer is the option letter whose token scores highest
// at the answer position) and free greedy generation with the KV cache (the paper's protocol; the caller extracts
// "The answer is X" from the text).
package evaluate

import (
	"fmt"

	"github.com/adapterlab/llama-adapter/adapter"
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
}

// extension returns the adapter's extension for a graph given optional features [B, M, D].
func (r *Runner) extension(g *Graph, features *Node) llama.AttentionExtension {
	if r.Adapter == nil {
		return nil
	}
	var visual *Node
	if features != nil && r.Adapter.Projection != nil {
		visual = r.Adapter.Projection.Token(features)
	}
	return r.Adapter.Extension(g, visual)
}

// letterGraph: right-padded tokens [B,S], row lengths [B] (int32), optional features → log-probabilities
// [B, W, V] at each row's last W real positions (W = MaxOptionTokens; positions before 0 repeat position 0).
func (r *Runner) letterGraph(scope *model.Scope, inputs []*Node) *Node {
	g := inputs[0].Graph()
	tokens, seqLens := inputs[0], inputs[1]
	var feats *Node
	if len(inputs) > 2 {
		feats = inputs[2]
	}
	ext := r.extension(g, feats)
	out := r.Model.Forward(g, llama.Inputs{Tokens: tokens, SeqLens: seqLens, Extension: ext, SkipLogits: true})
	B, W := tokens.Shape().Dimensions[0], MaxOptionTokens
	// Position of window slot w in row b: seqLen[b] - W + w, clamped at 0.
	pos := Add(InsertAxes(seqLens, -1), AddScalar(Iota(g, shapes.Make(dtypes.Int32, B, W), 1), -W))
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
// prompt: with single-token letters that is the argmax of the logits over the valid option letters, from one
// forward pass per example.
func (r *Runner) ScoreLetters(examples []LetterExample) ([]int, error) {
	scores, err := r.OptionScores(examples)
	if err != nil {
		return nil, err
	}
	choices := make([]int, len(examples))
	for i, sc := range scores {
		for o := range sc {
			if sc[o] > sc[choices[i]] {
				choices[i] = o
			}
		}
	}
	return choices, nil
}

// OptionScores returns, for each example and option, the log-probability of the option's continuation tokens
// after the prompt.
func (r *Runner) OptionScores(examples []LetterExample) ([][]float64, error) {
	r.defaults()
	if r.letterExec == nil {
		exec, err := r.placedExec(r.letterGraph)
		if err != nil {
			return nil, err
		}
		r.letterExec = exec
	}
	var rows []letterRow
	for i, e := range examples {
		if len(e.Prompt) == 0 {
			return nil, fmt.Errorf("evaluate: example %s has an empty prompt", e.ID)
		}
		if len(e.Options) < 2 {
			return nil, fmt.Errorf("evaluate: example %s has %d options", e.ID, len(e.Options))
		}
		rs, err := letterRows(i, e)
		if err != nil {
			return nil, err
		}
		rows = append(rows, rs...)
	}
	lengths := make([]int, len(rows))
	for k, row := range rows {
		lengths[k] = len(examples[row.example].Prompt) + len(row.probe)
		if lengths[k] > r.MaxLen {
			return nil, fmt.Errorf("evaluate: example %s has %d prompt tokens (max %d)", examples[row.example].ID, lengths[k], r.MaxLen)
		}
	}
	V, W := r.Model.Config.VocabSize, MaxOptionTokens
	scores := make([][]float64, len(examples))
	for i, e := range examples {
		scores[i] = make([]float64, len(e.Options))
	}
	done := 0
	for _, b := range train.SequentialBatches(lengths, r.BatchSize, r.PadMultiple, r.MaxLen) {
		B, S := len(b.Indices), b.Len
		tok := make([]int32, B*S)
		lens := make([]int32, B)
		var feats []float32
		for k, ri := range b.Indices {
			e := examples[rows[ri].example]
			copy(tok[k*S:], e.Prompt)
			copy(tok[k*S+len(e.Prompt):], rows[ri].probe)
			lens[k] = int32(lengths[ri])
			feats = append(feats, e.Features...)
		}
		args := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(tok, B, S), tensors.FromFlatDataAndDimensions(lens, B)}
		if len(feats) > 0 {
			vc := r.Adapter.Config.Visual
			if vc == nil || len(feats) != B*vc.Scales*vc.FeatureDim {
				return nil, fmt.Errorf("evaluate: batch features (%d values) do not fit the adapter's visual projection", len(feats))
			}
			args = append(args, tensors.FromFlatDataAndDimensions(feats, B, vc.Scales, vc.FeatureDim))
		}
		outs, err := r.runBatch(r.letterExec, args...)
		if err != nil {
			return nil, err
		}
		logp, err := tensors.CopyFlatData[float32](outs[0])
		if err != nil {
			return nil, err
		}
		for k, ri := range b.Indices {
			row := rows[ri]
			e := examples[row.example]
			// Window slot of the position that predicts the first continuation token (the prompt's last token).
			first := W - 1 - len(row.probe)
			for _, o := range row.options {
				sum := 0.0
				for j, t := range e.Options[o] {
					if t < 0 || int(t) >= V {
						return nil, fmt.Errorf("evaluate: example %s: option token %d outside the vocabulary", e.ID, t)
					}
					sum += float64(logp[(k*W+first+j)*V+int(t)])
				}
				scores[row.example][o] = sum
			}
		}
		if done += B; r.Progress != nil {
			r.Progress(done*len(examples)/len(rows), len(examples))
		}
	}
	return scores, nil
}

// GenExample is one prompt for free generation.
type GenExample struct {
	ID       string
	Prompt   []int // starts with BOS
	Features []float32
}

// Generate continues every prompt greedily for up to maxNew tokens (stopping a row at stop(token) == true, e.g.
// EOS), in batches of examples of similar length, with the KV cache.
func (r *Runner) Generate(examples []GenExample, maxNew int, stop func(id int) bool) ([][]int, error) {
	r.defaults()
	lengths := make([]int, len(examples))
	for i, e := range examples {
		lengths[i] = len(e.Prompt)
	}
	out := make([][]int, len(examples))
	if r.gens == nil {
		r.gens = map[int]*llama.Generator{}
	}
	gens := r.gens
	done := 0
	for _, b := range train.SequentialBatches(lengths, r.BatchSize, r.PadMultiple, r.MaxLen) {
		maxLen := min(r.MaxLen, r.Model.Config.MaxSeqLen, train.PadLen(b.Len+maxNew, r.PadMultiple, 0))
		gen, ok := gens[maxLen]
		if !ok {
			gen = r.Model.NewGenerator(r.Backend, maxLen, true)
			if r.Adapter != nil {
				gen.Extension = func(g *Graph, extra []*Node) llama.AttentionExtension {
					var f *Node
					if len(extra) > 0 {
						f = extra[0]
					}
					return r.extension(g, f)
				}
			}
			gens[maxLen] = gen
		}
		prompts := make([][]int, len(b.Indices))
		var feats []float32
		for row, i := range b.Indices {
			prompts[row] = examples[i].Prompt
			feats = append(feats, examples[i].Features...)
		}
		var extra []*tensors.Tensor
		if len(feats) > 0 && r.Adapter != nil && r.Adapter.Config.Visual != nil {
			vc := r.Adapter.Config.Visual
			extra = append(extra, tensors.FromFlatDataAndDimensions(feats, len(b.Indices), vc.Scales, vc.FeatureDim))
		}
		res, err := gen.Generate(prompts, maxNew, nil, func(row, prev, next int) bool {
			return stop == nil || !stop(next)
		}, extra...)
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
