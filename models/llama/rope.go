package llama

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// invFreqs returns the D/2 rotary inverse frequencies θ^(-2j/D), rounded to float32 as Hugging Face computes them
// (and llama2.c), then adjusted by the config's RopeScaling when set.
func (c Config) invFreqs() []float64 {
	D := c.HeadDim
	f := make([]float64, D/2)
	for j := range f {
		f[j] = float64(float32(1.0 / math.Pow(c.RopeTheta, float64(2*j)/float64(D))))
	}
	if c.RopeScaling != nil {
		for j := range f {
			f[j] = float64(float32(c.RopeScaling.scale(f[j])))
		}
	}
	return f
}

// ropeTables returns cos and sin [maxLen, D] (float32) for HF's rotate-half layout: angle_j = pos·invFreq_j for
// j < D/2, repeated for the second half. Computed on the host in float64 once per graph.
func (m *Model) ropeTables(g *Graph, maxLen int) (cos, sin *Node) {
	D := m.Config.HeadDim
	invFreq := m.Config.invFreqs()
	c := make([]float32, maxLen*D)
	s := make([]float32, maxLen*D)
	for p := 0; p < maxLen; p++ {
		for j, f := range invFreq {
			a := float64(p) * f
			c[p*D+j], c[p*D+j+D/2] = float32(math.Cos(a)), float32(math.Cos(a))
			s[p*D+j], s[p*D+j+D/2] = float32(math.Sin(a)), float32(math.Sin(a))
		}
	}
	cos = Const(g, tensors.FromFlatDataAndDimensions(c, maxLen, D))
	sin = Const(g, tensors.FromFlatDataAndDimensions(s, maxLen, D))
	return
}

// rotary returns the per-token cos and sin [B, S, D] for positions [B, S], from tables covering at least minLen
// positions (the configured maximum, or more when a longer cache asks for it).
func (m *Model) rotary(positions *Node, minLen int) (cos, sin *Node) {
	cosT, sinT := m.ropeTables(positions.Graph(), max(m.Config.MaxSeqLen, minLen))
	idx := InsertAxes(positions, -1)
	return Gather(cosT, idx), Gather(sinT, idx)
}

// applyRope rotates x [B, S, heads, D] by per-position cos/sin [B, S, D] (rotate-half layout).
func applyRope(x, cos, sin *Node) *Node {
	dtype := x.DType()
	D := x.Shape().Dimensions[3]
	xf := ConvertDType(x, dtypes.Float32)
	x1 := Slice(xf, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, D/2))
	x2 := Slice(xf, AxisRange(), AxisRange(), AxisRange(), AxisRange(D/2, D))
	rot := Concatenate([]*Node{Neg(x2), x1}, -1)
	cos = InsertAxes(cos, 2)
	sin = InsertAxes(sin, 2)
	return ConvertDType(Add(Mul(xf, cos), Mul(rot, sin)), dtype)
}
