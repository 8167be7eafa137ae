// Package evaluate runs a frozen LLaMA with an adapter over multiple-choice prompts, in the two protocols the
// toolkit reports: letter scoring (one forward pass; the answer is the option letter whose token scores highest
// at the answer position) and free greedy generation with the KV cache (the paper's protocol; the caller extracts
// "The answer is X" from the text).
package evaluate

import (
	"fmt"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/experiments/train"
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

	letterExec *model.Exec
}

// LetterExample is one multiple-choice prompt for letter scoring.
type LetterExample struct {
	ID string
	// Prompt ends just before the answer letter (e.g. "... Answer: The answer is").
	Prompt []int32
	// Options holds, for each option in order, the token id of its letter at that position.
	Options []int32
	// Features are the image features (M·D), nil for text-only.
	Features []float32
}

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

// letterGraph: right-padded tokens [B,S], row lengths [B] (int32), optional features → logits [B, V] at each row's
// last real position.
func (r *Runner) letterGraph(scope *model.Scope, inputs []*Node) *Node {
	g := inputs[0].Graph()
	tokens, seqLens := inputs[0], inputs[1]
	var feats *Node
	if len(inputs) > 2 {
		feats = inputs[2]
	}
	out := r.Model.Forward(g, llama.Inputs{Tokens: tokens, SeqLens: seqLens, Extension: r.extension(g, feats), SkipLogits: true})
	B := tokens.Shape().Dimensions[0]
	last := AddScalar(seqLens, -1)
	idx := Concatenate([]*Node{Iota(g, shapes.Make(dtypes.Int32, B, 1), 0), InsertAxes(last, -1)}, 1)
	final := Gather(out.Final, idx) // [B, C]
	return r.Model.LogitsFromFinal(final)
}

// ScoreLetters returns, for each example, the index of the option whose letter token has the largest logit after
// the prompt (the argmax over the valid option letters only).
func (r *Runner) ScoreLetters(examples []LetterExample) ([]int, error) {
	r.defaults()
	if r.letterExec == nil {
		exec, err := model.NewExec(r.Backend, r.Model.Store, r.letterGraph)
		if err != nil {
			return nil, err
		}
		exec.SetMaxCache(64)
		r.letterExec = exec
	}
	lengths := make([]int, len(examples))
	for i, e := range examples {
		if len(e.Prompt) == 0 || len(e.Prompt) > r.MaxLen {
			return nil, fmt.Errorf("evaluate: example %s has %d prompt tokens (max %d)", e.ID, len(e.Prompt), r.MaxLen)
		}
		if len(e.Options) < 2 {
			return nil, fmt.Errorf("evaluate: example %s has %d options", e.ID, len(e.Options))
		}
		lengths[i] = len(e.Prompt)
	}
	V := r.Model.Config.VocabSize
	choices := make([]int, len(examples))
	for _, b := range train.SequentialBatches(lengths, r.BatchSize, r.PadMultiple, r.MaxLen) {
		B, S := len(b.Indices), b.Len
		tok := make([]int32, B*S)
		lens := make([]int32, B)
		var feats []float32
		for row, i := range b.Indices {
			e := examples[i]
			copy(tok[row*S:], e.Prompt)
			lens[row] = int32(len(e.Prompt))
			feats = append(feats, e.Features...)
		}
		args := []any{tensors.FromFlatDataAndDimensions(tok, B, S), tensors.FromFlatDataAndDimensions(lens, B)}
		if len(feats) > 0 {
			vc := r.Adapter.Config.Visual
			if vc == nil || len(feats) != B*vc.Scales*vc.FeatureDim {
				return nil, fmt.Errorf("evaluate: batch features (%d values) do not fit the adapter's visual projection", len(feats))
			}
			args = append(args, tensors.FromFlatDataAndDimensions(feats, B, vc.Scales, vc.FeatureDim))
		}
		outs, err := r.letterExec.Exec(args...)
		if err != nil {
			return nil, err
		}
		logits, err := tensors.CopyFlatData[float32](outs[0])
		if err != nil {
			return nil, err
		}
		for row, i := range b.Indices {
			best := 0
			for o, tokID := range examples[i].Options {
				if tokID < 0 || int(tokID) >= V {
					return nil, fmt.Errorf("evaluate: example %s: option token %d outside the vocabulary", examples[i].ID, tokID)
				}
				if logits[row*V+int(tokID)] > logits[row*V+int(examples[i].Options[best])] {
					best = o
				}
			}
			choices[i] = best
		}
	}
	return choices, nil
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
	gens := map[int]*llama.Generator{} // one per padded length keeps each compiled graph reused
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
	}
	return out, nil
}
