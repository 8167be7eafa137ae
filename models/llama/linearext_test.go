package llama

import (
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// probeExtension is an attention extension that adds nothing but projects a probe through the KVProjector, and a
// linear extension that records every call and can scale the LM head.
type probeExtension struct {
	headScale float64
	dim       int            // the model's C
	linears   map[[2]int]int // (layer, Linear) → calls
	norms     map[[2]int]int // (layer, Norm) → calls
}

func (p *probeExtension) Extend(q *Node, kv KVProjector) *Node {
	kv.Project(Ones(q.Graph(), shapes.Make(q.DType(), 3, p.dim)))
	return nil
}

func (p *probeExtension) ExtendLinear(layer int, l Linear, y *Node) *Node {
	p.linears[[2]int{layer, int(l)}]++
	if l == LinearHead && p.headScale != 0 {
		return MulScalar(y, p.headScale)
	}
	return y
}

func (p *probeExtension) ExtendNorm(layer int, n Norm, w *Node) *Node {
	p.norms[[2]int{layer, int(n)}]++
	return w
}

// TestLinearExtensionSeam: the decoder hands every linear layer (q, k, v, o, gate, up, down of every layer, the
// LM head) and every RMSNorm weight to a LinearExtension exactly once per pass, the KVProjector goes through the
// extended k/v, an identity extension leaves the logits as they are, and a head extension reaches the logits.
func TestLinearExtensionSeam(t *testing.T) {
	m := loadLlamaTiny(t, dtypes.Float32)
	ids := tensors.FromValue([][]int32{{1, 5, 9, 3, 7}, {2, 4, 6, 8, 10}})
	run := func(ext *probeExtension) []float32 {
		out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens *Node) *Node {
			in := Inputs{Tokens: tokens}
			if ext != nil {
				in.Extension = ext
			}
			return m.Forward(tokens.Graph(), in).Logits
		}, ids)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	base := run(nil)
	id := &probeExtension{dim: m.Config.Dim, linears: map[[2]int]int{}, norms: map[[2]int]int{}}
	if d := assets.MaxAbsDiff(run(id), base); d > 1e-5 {
		t.Errorf("identity linear extension moves the logits by %g", d)
	}
	N := m.Config.NumLayers
	for i := 0; i < N; i++ {
		for _, l := range LayerLinears {
			want := 1
			if l == LinearK || l == LinearV {
				want = 2 // the word tokens' projection and the extension's KVProjector.Project
			}
			if got := id.linears[[2]int{i, int(l)}]; got != want {
				t.Errorf("layer %d %s: extended %d times, want %d", i, l, got, want)
			}
		}
		for _, n := range []Norm{NormAttn, NormFFN} {
			if got := id.norms[[2]int{i, int(n)}]; got != 1 {
				t.Errorf("layer %d %s: extended %d times, want 1", i, n, got)
			}
		}
	}
	if id.linears[[2]int{-1, int(LinearHead)}] != 1 || id.norms[[2]int{-1, int(NormFinal)}] != 1 {
		t.Errorf("head/final norm extended %d/%d times, want 1/1", id.linears[[2]int{-1, int(LinearHead)}], id.norms[[2]int{-1, int(NormFinal)}])
	}
	if len(id.linears) != 7*N+1 || len(id.norms) != 2*N+1 {
		t.Errorf("extended %d linears and %d norms, want %d and %d", len(id.linears), len(id.norms), 7*N+1, 2*N+1)
	}
	doubled := run(&probeExtension{headScale: 2, dim: m.Config.Dim, linears: map[[2]int]int{}, norms: map[[2]int]int{}})
	for i := range base {
		if d := doubled[i] - 2*base[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("head scaled by 2: logit %d is %g, want %g", i, doubled[i], 2*base[i])
		}
	}
}
