package device

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph-building idiom
	"github.com/gomlx/gomlx/core/tensors"
)

// blockShape sizes a LLaMA-style transformer block: pre-norm causal self-attention (no RoPE) and a SwiGLU
// MLP, each with a residual connection.
type blockShape struct {
	Batch, Seq, Dim, Heads, Hidden int
}

// blockWeightDims lists the weights' dimensions in the order blockTrainStep takes them:
// attention norm, wq, wk, wv, wo, MLP norm, w1 (gate), w3 (up), w2 (down).
func (s blockShape) blockWeightDims() [][]int {
	d, f := s.Dim, s.Hidden
	return [][]int{{d}, {d, d}, {d, d}, {d, d}, {d, d}, {d}, {d, f}, {d, f}, {f, d}}
}

// flopsPerStep counts the multiply-adds of the matmuls (×2) of one forward and backward pass: the backward
// pass costs two matmuls per forward matmul.
func (s blockShape) flopsPerStep() float64 {
	tokens := float64(s.Batch * s.Seq)
	d, f, t := float64(s.Dim), float64(s.Hidden), float64(s.Seq)
	fwd := 2*tokens*(4*d*d+3*d*f) + 2*2*float64(s.Batch)*t*t*d
	return 3 * fwd
}

func rmsNorm(x, gain *Node) *Node {
	ms := ReduceAndKeep(Square(x), ReduceMean, -1)
	// Div(x, Sqrt) rather than Rsqrt: GoMLX v0.28.8 defines no gradient for Rsqrt.
	return Mul(Div(x, Sqrt(AddScalar(ms, 1e-5))), Reshape(gain, 1, 1, gain.Shape().Dim(0)))
}

// blockForward returns the block's output for x [batch, seq, dim].
func blockForward(s blockShape, x *Node, w []*Node) *Node {
	g := x.Graph()
	b, t, d, h := s.Batch, s.Seq, s.Dim, s.Heads
	dh := d / h
	attnNorm, wq, wk, wv, wo, mlpNorm, w1, w3, w2 := w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]

	hn := rmsNorm(x, attnNorm)
	q := Reshape(Einsum("btd,de->bte", hn, wq), b, t, h, dh)
	k := Reshape(Einsum("btd,de->bte", hn, wk), b, t, h, dh)
	v := Reshape(Einsum("btd,de->bte", hn, wv), b, t, h, dh)
	scores := MulScalar(Einsum("bqhd,bkhd->bhqk", q, k), 1/math.Sqrt(float64(dh)))
	causal := BroadcastToDims(Reshape(LowerTriangular(g, t), 1, 1, t, t), b, h, t, t)
	scores = Where(causal, scores, BroadcastToDims(Scalar(g, x.DType(), -1e9), b, h, t, t))
	probs := Softmax(scores, -1)
	attn := Reshape(Einsum("bhqk,bkhd->bqhd", probs, v), b, t, d)
	x = Add(x, Einsum("btd,de->bte", attn, wo))

	hn = rmsNorm(x, mlpNorm)
	gate := Einsum("btd,df->btf", hn, w1)
	up := Einsum("btd,df->btf", hn, w3)
	mlp := Einsum("btf,fd->btd", Mul(Mul(gate, Sigmoid(gate)), up), w2)
	return Add(x, mlp)
}

// blockTrainStep returns the loss mean(out²) and its gradient with respect to each weight: the
// forward+backward work of one training step.
func blockTrainStep(s blockShape) func(inputs []*Node) []*Node {
	return func(inputs []*Node) []*Node {
		x, w := inputs[0], inputs[1:]
		loss := ReduceAllMean(Square(blockForward(s, x, w)))
		return append([]*Node{loss}, Gradient(loss, w...)...)
	}
}

// blockInputs returns x and the weights, random but deterministic (seeded), as float32 or float64.
func blockInputs(s blockShape, dtype dtypes.DType, seed uint64) []any {
	rng := rand.New(rand.NewPCG(seed, 1))
	mk := func(scale float64, norm bool, dims ...int) any {
		t := tensors.FromShape(shapes.Make(dtype, dims...))
		n := t.Shape().Size()
		vals := make([]float64, n)
		for i := range vals {
			if norm {
				vals[i] = 1 + 0.1*rng.NormFloat64()
			} else {
				vals[i] = scale * rng.NormFloat64()
			}
		}
		switch dtype {
		case dtypes.Float32:
			tensors.MustMutableFlatData(t, func(flat []float32) {
				for i, v := range vals {
					flat[i] = float32(v)
				}
			})
		case dtypes.Float64:
			tensors.MustMutableFlatData(t, func(flat []float64) { copy(flat, vals) })
		}
		return t
	}
	args := []any{mk(1, false, s.Batch, s.Seq, s.Dim)}
	for _, dims := range s.blockWeightDims() {
		if len(dims) == 1 {
			args = append(args, mk(0, true, dims...))
		} else {
			args = append(args, mk(1/math.Sqrt(float64(dims[0])), false, dims...))
		}
	}
	return args
}

func newBlockExec(tb testing.TB, b compute.Backend, s blockShape) *Exec {
	tb.Helper()
	exec, err := NewExec(b, blockTrainStep(s))
	if err != nil {
		tb.Fatalf("NewExec: %v", err)
	}
	return exec
}

// runBlockStep compiles and runs one step of the block on b, returning the flattened outputs as float64.
func runBlockStep(tb testing.TB, b compute.Backend, s blockShape, args []any) [][]float64 {
	tb.Helper()
	return runExec(tb, newBlockExec(tb, b, s), args)
}

func runExec(tb testing.TB, exec *Exec, args []any) [][]float64 {
	tb.Helper()
	outs, err := exec.Call(args...)
	if err != nil {
		tb.Fatalf("running the block: %v", err)
	}
	res := make([][]float64, len(outs))
	for i, o := range outs {
		res[i] = flatFloat64(tb, o)
	}
	return res
}

func flatFloat64(tb testing.TB, t *tensors.Tensor) []float64 {
	tb.Helper()
	var out []float64
	switch t.DType() {
	case dtypes.Float32:
		tensors.MustConstFlatData(t, func(flat []float32) {
			for _, v := range flat {
				out = append(out, float64(v))
			}
		})
	case dtypes.Float64:
		tensors.MustConstFlatData(t, func(flat []float64) { out = append(out, flat...) })
	default:
		tb.Fatalf("unexpected dtype %s", t.DType())
	}
	return out
}

// perturbedLoss returns the loss with element j of weight w (float64) moved by delta; args is left unchanged.
func perturbedLoss(tb testing.TB, exec *Exec, args []any, w, j int, delta float64) float64 {
	tb.Helper()
	orig := args[1+w].(*tensors.Tensor)
	moved, err := orig.LocalClone()
	if err != nil {
		tb.Fatal(err)
	}
	tensors.MustMutableFlatData(moved, func(flat []float64) { flat[j] += delta })
	perturbed := append([]any(nil), args...)
	perturbed[1+w] = moved
	return runExec(tb, exec, perturbed)[0][0]
}
