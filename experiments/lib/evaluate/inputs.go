package evaluate

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// The executors' graph inputs by name (models/llama/generate.go's stepInputs pattern): the host fills a struct of
// tensors and packs it; the graph function unpacks the same struct of nodes. The positional order lives only in
// pack and unpack, so no executor reads inputs[i].

// letterInputs are letterGraph's inputs: right-padded tokens [B,S] and row lengths [B] (int32), and optional
// image features [B,M,D] (none, or one tensor).
type letterInputs[T any] struct {
	Tokens, SeqLens T
	Features        []T
}

func (in letterInputs[T]) pack() []T { return append([]T{in.Tokens, in.SeqLens}, in.Features...) }

func unpackLetterInputs[T any](flat []T) letterInputs[T] {
	return letterInputs[T]{Tokens: flat[0], SeqLens: flat[1], Features: flat[2:]}
}

// clozeInputs are clozeGraph's inputs (int32): tokens, each token's segment and rotary position [G,S]; the scored
// window's source positions and targets [G,W]; optional image features [G,M,D].
type clozeInputs[T any] struct {
	Tokens, Segments, Rotary, Positions, Targets T
	Features                                     []T
}

func (in clozeInputs[T]) pack() []T {
	return append([]T{in.Tokens, in.Segments, in.Rotary, in.Positions, in.Targets}, in.Features...)
}

func unpackClozeInputs[T any](flat []T) clozeInputs[T] {
	return clozeInputs[T]{Tokens: flat[0], Segments: flat[1], Rotary: flat[2], Positions: flat[3], Targets: flat[4], Features: flat[5:]}
}

// optionalFeatures is the features input of a graph: the one node given, or nil (text only).
func optionalFeatures(fs []*Node) *Node {
	if len(fs) == 0 {
		return nil
	}
	return fs[0]
}

// featureArgs is the features argument list of a batch: the adapter's feature tensor, or none.
func (r *Runner) featureArgs(features []float32, rows int) ([]*tensors.Tensor, error) {
	if len(features) == 0 {
		return nil, nil
	}
	if r.Adapter == nil {
		return nil, errNoProjection
	}
	t, err := r.Adapter.FeatureTensor(features, rows)
	if err != nil {
		return nil, err
	}
	return []*tensors.Tensor{t}, nil
}
