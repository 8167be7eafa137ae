package train

import (
	"fmt"
	"strings"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// OptimizerScope holds the optimizer's state: per trainable variable its AdamW moments and gradient accumulator,
// plus the step count. It is saved with checkpoints.
const OptimizerScope = "/optimizer"

// optVars is the optimizer state of one trainable variable.
type optVars struct {
	param        *model.Variable
	m, v, accum  *model.Variable
	weightDecay  bool
	checkpointID string
}

// newOptimizerState creates (zeroed) AdamW state for the adapter's variables. Weight decay is decided by structure
// (see Decays): the prompts and the projection's weights decay, gates and biases do not (the official code's
// parameter groups), and V2's terms never do (see decaysParam).
func newOptimizerState(store *model.Store, a *adapter.Adapter) ([]*optVars, *model.Variable, error) {
	var ovs []*optVars
	for _, p := range a.Variables() {
		name := strings.TrimPrefix(p.Path(), adapter.Scope+"/")
		mk := func(kind string) (*model.Variable, error) {
			v, err := store.CreateVariable(fmt.Sprintf("%s/%s/%s", OptimizerScope, kind, name), tensors.FromShape(p.Shape()))
			if err != nil {
				return nil, err
			}
			return v.SetTrainable(false), nil
		}
		ov := &optVars{param: p, checkpointID: name}
		var err error
		if ov.m, err = mk("m"); err != nil {
			return nil, nil, err
		}
		if ov.v, err = mk("v"); err != nil {
			return nil, nil, err
		}
		if ov.accum, err = mk("accum"); err != nil {
			return nil, nil, err
		}
		ov.weightDecay = decaysParam(a, p)
		ovs = append(ovs, ov)
	}
	step, err := store.CreateVariable(OptimizerScope+"/step", tensors.FromScalar(float32(0)))
	if err != nil {
		return nil, nil, err
	}
	step.SetTrainable(false)
	return ovs, step, nil
}

// decaysParam is the weight-decay decision for one adapter variable. V2's terms are excluded by name, not by
// shape (their stacked [N, out] variables would pass Decays' rank test): decay pulls a scale towards 0 and a norm
// weight towards 0, away from their meaningful starts (1 and the pretrained weight), and the V2 biases follow the
// official LLaMA-Adapter code's parameter groups, where every 1-D tensor and every bias is exempt (its
// misc.add_weight_decay: len(shape) == 1 or name ends in ".bias"); each bias, scale and norm is 1-D per layer there.
func decaysParam(a *adapter.Adapter, p *model.Variable) bool {
	if a.IsV2(p) {
		return false
	}
	return Decays(p.Shape().Dimensions, p == a.Prompts || p == a.Gates)
}

// Decays is the weight-decay rule, nanoGPT's p.dim() >= 2 applied to what one layer owns: a variable decays when
// each of its per-layer slices is a matrix or more. perLayer marks variables that stack one tensor per adapted
// layer along their first axis (the adapter's prompts [L, K, C] and gates [L, H] or [L]), whose first axis does
// not count. So prompts and projection weights [out, in] decay; gates and biases [out] do not.
func Decays(dims []int, perLayer bool) bool {
	rank := len(dims)
	if perLayer {
		rank--
	}
	return rank >= 2
}

// stepInputs are the training and loss graphs' inputs by name: tokens [B, S] (right-padded), targets (the next
// token) and weights (1 where it is a target) [B, S], or [B, W] with Config.AnswerHead, where Positions [B, W] names
// the position predicting each slot's target; each row's length [B]; the learning rate (the training step only,
// scalar) and image features [B, M, D] (multimodal examples only). The graphs' positional inputs are their
// flattening (pack) in this order; the graph functions read them back with unpackStepInputs. T is *tensors.Tensor
// on the host and *Node in a graph.
type stepInputs[T any] struct {
	Tokens, Targets, Weights, SeqLens T
	LR, Positions, Features           T
	// Has says which of the optional inputs are present.
	Has inputLayout
}

// inputLayout says which optional inputs a graph takes.
type inputLayout struct {
	LR, Positions, Features bool
}

// pack flattens the inputs in graph order.
func (in stepInputs[T]) pack() []T {
	flat := []T{in.Tokens, in.Targets, in.Weights, in.SeqLens}
	for _, o := range []struct {
		has bool
		v   T
	}{{in.Has.LR, in.LR}, {in.Has.Positions, in.Positions}, {in.Has.Features, in.Features}} {
		if o.has {
			flat = append(flat, o.v)
		}
	}
	return flat
}

// unpackStepInputs names a graph's positional inputs: lr and positions are present as has says; features are
// present when one more input is given.
func unpackStepInputs[T any](flat []T, has inputLayout) stepInputs[T] {
	in := stepInputs[T]{Tokens: flat[0], Targets: flat[1], Weights: flat[2], SeqLens: flat[3]}
	rest := flat[4:]
	if has.LR {
		in.LR, rest = rest[0], rest[1:]
	}
	if has.Positions {
		in.Positions, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		in.Features, has.Features = rest[0], true
	}
	in.Has = has
	return in
}

// maskedNLL returns the mean negative log-likelihood of targets over positions with weight 1, and the weight sum.
// Only the target positions' log-softmax is gathered (no one-hot over the vocabulary). logits are [B, S, V] with
// targets and weights [B, S], or the answer head's [B, W, V] with [B, W].
func maskedNLL(logits, targets, weights *Node) (loss, count *Node) {
	g := logits.Graph()
	B, S := targets.Shape().Dimensions[0], targets.Shape().Dimensions[1]
	logp := LogSoftmax(logits, -1)
	idx := Concatenate([]*Node{
		Iota(g, shapes.Make(dtypes.Int32, B, S, 1), 0),
		Iota(g, shapes.Make(dtypes.Int32, B, S, 1), 1),
		InsertAxes(ConvertDType(targets, dtypes.Int32), -1),
	}, -1)
	picked := Gather(logp, idx) // [B, S]
	count = ReduceAllSum(weights)
	loss = Div(Neg(ReduceAllSum(Mul(picked, weights))), Max(count, ScalarOne(g, dtypes.Float32)))
	return
}

// forwardLoss runs the model with the adapter and returns the masked loss and target count. With in.positions
// (the answer head) only the final-norm states at those positions go through the LM head: logits [B, W, V]
// instead of [B, S, V], the same masked mean over the same target tokens.
func forwardLoss(m *llama.Model, a *adapter.Adapter, in stepInputs[*Node], remat bool) (loss, count *Node) {
	g := in.Tokens.Graph()
	var features *Node
	if in.Has.Features {
		features = in.Features
	}
	fwd := llama.Inputs{Tokens: in.Tokens, SeqLens: in.SeqLens, Extension: a.FeatureExtension(g, features), SkipLogits: in.Has.Positions, Remat: remat}
	out := m.Forward(g, fwd)
	if !in.Has.Positions {
		return maskedNLL(out.Logits, in.Targets, in.Weights)
	}
	return maskedNLL(m.LogitsAt(out.Final, in.Positions, fwd.Extension), in.Targets, in.Weights)
}

// buildStep builds one micro-step: gradients of the loss w.r.t. the adapter's variables are added to the
// accumulators (divided by the number of micro-steps); when apply is set, the accumulated gradient is clipped by
// global norm and AdamW updates the variables, and the accumulators are reset. An update whose loss or gradient is
// not finite is skipped (variables keep their values) so the caller can stop with the last good state.
// Outputs: loss, target count, gradient norm (0 when not applying).
func (t *Trainer) buildStep(apply bool) func(scope *model.Scope, inputs []*Node) []*Node {
	cfg := t.Config
	return func(scope *model.Scope, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		in := unpackStepInputs(inputs, inputLayout{LR: true, Positions: t.Config.AnswerHead})
		loss, count := forwardLoss(t.Model, t.Adapter, in, cfg.Remat)
		params := make([]*Node, len(t.opt))
		for i, ov := range t.opt {
			params[i] = ov.param.NodeValue(g)
		}
		grads := Gradient(loss, params...)
		inv := 1 / float64(cfg.AccumSteps)
		acc := make([]*Node, len(t.opt))
		for i, ov := range t.opt {
			acc[i] = Add(ov.accum.NodeValue(g), MulScalar(grads[i], inv))
		}
		zero := ScalarZero(g, dtypes.Float32)
		if !apply {
			for i, ov := range t.opt {
				ov.accum.SetNodeValue(acc[i])
			}
			return []*Node{loss, count, zero}
		}
		// Global-norm clipping of the accumulated gradient.
		sq := zero
		for _, a := range acc {
			sq = Add(sq, ReduceAllSum(Square(a)))
		}
		norm := Sqrt(sq)
		finite := LogicalAnd(IsFinite(norm), IsFinite(loss))
		scale := ScalarOne(g, dtypes.Float32)
		if cfg.ClipNorm > 0 {
			scale = Min(scale, Div(Scalar(g, dtypes.Float32, cfg.ClipNorm), Add(norm, Scalar(g, dtypes.Float32, 1e-6))))
		}
		stepVar := t.stepVar.NodeValue(g)
		newStep := OnePlus(stepVar)
		b1, b2 := cfg.Beta1, cfg.Beta2
		bias1 := OneMinus(Pow(Scalar(g, dtypes.Float32, b1), newStep))
		bias2 := OneMinus(Pow(Scalar(g, dtypes.Float32, b2), newStep))
		for i, ov := range t.opt {
			grad := Mul(acc[i], scale)
			m := Add(MulScalar(ov.m.NodeValue(g), b1), MulScalar(grad, 1-b1))
			v := Add(MulScalar(ov.v.NodeValue(g), b2), MulScalar(Square(grad), 1-b2))
			update := Div(Div(m, bias1), AddScalar(Sqrt(Div(v, bias2)), cfg.Eps))
			p := ov.param.NodeValue(g)
			if ov.weightDecay && cfg.WeightDecay > 0 {
				update = Add(update, MulScalar(p, cfg.WeightDecay))
			}
			newP := Sub(p, Mul(in.LR, update))
			ov.param.SetNodeValue(Where(finite, newP, p))
			ov.m.SetNodeValue(Where(finite, m, ov.m.NodeValue(g)))
			ov.v.SetNodeValue(Where(finite, v, ov.v.NodeValue(g)))
			ov.accum.SetNodeValue(ZerosLike(p))
		}
		t.stepVar.SetNodeValue(Where(finite, newStep, stepVar))
		return []*Node{loss, count, norm}
	}
}

// buildEvalLoss builds the loss-only graph (no gradients, no updates).
func (t *Trainer) buildEvalLoss() func(scope *model.Scope, inputs []*Node) []*Node {
	return func(scope *model.Scope, inputs []*Node) []*Node {
		// No gradient here: nothing to recompute.
		loss, count := forwardLoss(t.Model, t.Adapter, unpackStepInputs(inputs, inputLayout{Positions: t.Config.AnswerHead}), false)
		return []*Node{loss, count}
	}
}
