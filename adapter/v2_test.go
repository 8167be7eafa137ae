package adapter

import (
	"fmt"
	"math"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// v2Tiny builds adapter_v2_tiny's configuration (L=2, K=4, head-tanh gates) with the golden prompts and gates;
// withTerms also sets the golden V2 tensors (otherwise they keep their identity start: bias 0, scale 1,
// pretrained norms).
func v2Tiny(t *testing.T, m *llama.Model, fusion string, withTerms bool) *Adapter {
	t.Helper()
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Gate: GateHeadTanh, Version: V2, Fusion: fusion}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	ad := openGolden(t, "adapter_v2_tiny", "adapter_v2.safetensors")
	a.Prompts.MustSetValue(ad.tensor("prompts"))
	a.Gates.MustSetValue(ad.tensor("gates"))
	if withTerms {
		if err := a.setV2FromHF("adapter_v2.safetensors", ad.f.ReadFloat32); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// TestGoldenV2Logits checks every logits tensor of adapter_v2_tiny within 1e-4.
func TestGoldenV2Logits(t *testing.T) {
	gold := openGolden(t, "adapter_v2_tiny", "golden.safetensors")
	ids := gold.ids()
	vis := openGolden(t, "adapter_v2_tiny", "adapter_v2.safetensors").tensor("visual")
	cases := []struct {
		golden, fusion   string
		terms, zeroGates bool
		visual           *tensors.Tensor
	}{
		{"logits_v2_identity", "", false, false, nil},
		{"logits_v2", "", true, false, nil},
		{"logits_v2_zero_gate", "", true, true, nil},
		{"logits_v2_visual_all", "all", true, false, vis},
		{"logits_v2_visual_first", "first", true, false, vis},
		{"logits_v2_visual_first", "1", true, false, vis}, // a count of 1 is "first"
	}
	for _, c := range cases {
		t.Run(c.golden+"/"+c.fusion, func(t *testing.T) {
			m := loadTiny(t)
			a := v2Tiny(t, m, c.fusion, c.terms)
			if c.zeroGates {
				a.Gates.MustSetValue(tensors.FromShape(a.Gates.Shape()))
			}
			want, _ := gold.f32(c.golden)
			d := assets.MaxAbsDiff(logits(t, m, a, ids, c.visual), want)
			if d > 1e-4 {
				t.Errorf("%s: max |diff| = %g > 1e-4", c.golden, d)
			}
			t.Logf("%s (fusion %q): max |diff| = %.3g", c.golden, c.fusion, d)
		})
	}
	// The fusion settings are not interchangeable on this input: the golden all/first logits differ.
	all, _ := gold.f32("logits_v2_visual_all")
	first, _ := gold.f32("logits_v2_visual_first")
	if d := assets.MaxAbsDiff(all, first); d < 1e-3 {
		t.Errorf("visual_all and visual_first goldens differ by only %g: the fusion test would not catch a swap", d)
	}
}

// TestV2IdentityEqualsV1: V2 with its identity start (bias 0, scale 1, pretrained norms) computes exactly V1's
// logits: y·1 + 0 is y in float32. The pure-Go backend runs both graphs op by op, so bit-identical; XLA fuses the
// two graphs differently, which moves float32 results by rounding only.
func TestV2IdentityEqualsV1(t *testing.T) {
	gold := openGolden(t, "adapter_v2_tiny", "golden.safetensors")
	ids := gold.ids()
	vis := openGolden(t, "adapter_v2_tiny", "adapter_v2.safetensors").tensor("visual")
	for _, visual := range []*tensors.Tensor{nil, vis} {
		m := loadTiny(t)
		v1 := tinyAdapter(t, m, GateHeadTanh, "gates")
		want := logits(t, m, v1, ids, visual)
		m2 := loadTiny(t)
		got := logits(t, m2, v2Tiny(t, m2, "", false), ids, visual)
		tol := 0.0
		if device.MustShared().Name() != "Go Backend" {
			tol = 1e-5
		}
		if d := assets.MaxAbsDiff(got, want); d > tol {
			t.Errorf("visual %v: V2 identity differs from V1 by %g (allowed %g on %s)", visual != nil, d, tol, device.MustShared().Name())
		}
	}
}

// TestGoldenV2Gradients checks the loss (1e-5) and the gradient of every trainable tensor (prompts, gates, the
// visual token, each bias, scale and norm weight) against PyTorch's, each within 1e-4 of its norm: ‖got − want‖₂ ≤
// 1e-4·‖want‖₂.
func TestGoldenV2Gradients(t *testing.T) {
	gold := openGolden(t, "adapter_v2_tiny", "golden.safetensors")
	m := loadTiny(t)
	a := v2Tiny(t, m, "all", true)
	vis := openGolden(t, "adapter_v2_tiny", "adapter_v2.safetensors").tensor("visual")
	refs := a.V2.hfRefs(m.Config.NumLayers)
	v2vars, _ := a.V2.variables()
	out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens, visual *Node) []*Node {
		g := tokens.Graph()
		loss := nextTokenLoss(m.Forward(g, llama.Inputs{Tokens: tokens, Extension: a.Extension(g, visual)}).Logits, tokens)
		wrt := []*Node{a.Prompts.NodeValue(g), a.Gates.NodeValue(g), visual}
		for _, v := range v2vars {
			wrt = append(wrt, v.NodeValue(g))
		}
		return append([]*Node{loss}, Gradient(loss, wrt...)...)
	}, gold.ids(), vis)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, _ := gold.f32("loss_v2_visual_all")
	gotLoss := tensors.ToScalar[float32](out[0])
	if d := math.Abs(float64(gotLoss - wantLoss[0])); d > 1e-5 {
		t.Errorf("loss %g, golden %g: |diff| %g > 1e-5", gotLoss, wantLoss[0], d)
	}
	check := func(name string, got []float32) {
		want, _ := gold.f32("grad." + name)
		if len(got) != len(want) {
			t.Errorf("grad.%s: %d values, golden %d", name, len(got), len(want))
			return
		}
		var dn, wn float64
		for i := range want {
			dn += math.Pow(float64(got[i]-want[i]), 2)
			wn += math.Pow(float64(want[i]), 2)
		}
		if wn == 0 {
			t.Errorf("grad.%s: golden gradient is zero, the check could not fail", name)
		}
		if rel := math.Sqrt(dn / wn); rel > 1e-4 {
			t.Errorf("grad.%s: ‖diff‖/‖golden‖ = %.3g > 1e-4", name, rel)
		}
	}
	check("prompts", tensors.MustCopyFlatData[float32](out[1]))
	check("gates", tensors.MustCopyFlatData[float32](out[2]))
	check("visual", tensors.MustCopyFlatData[float32](out[3]))
	grads := map[*model.Variable][]float32{}
	for i, v := range v2vars {
		grads[v] = tensors.MustCopyFlatData[float32](out[4+i])
	}
	checked := 3
	for _, r := range refs {
		w := r.rowWidth()
		check(r.name, grads[r.v][max(r.layer, 0)*w:][:w])
		checked++
	}
	// Every golden gradient was compared: 3 + (16 per layer)·N + 3.
	if n := 3 + 16*m.Config.NumLayers + 3; checked != n {
		t.Errorf("checked %d gradients, want %d", checked, n)
	}
	t.Logf("loss %.7g (golden %.7g); %d gradients checked", gotLoss, wantLoss[0], checked)
}

// TestCountV2_7B prints the trainable parameters of LLaMA-Adapter V2 on LLaMA-7B (K=10, L=30, head-tanh gates)
// and checks them against a hand computation.
func TestCountV2_7B(t *testing.T) {
	m7 := llama.Config{Dim: 4096, HiddenDim: 11008, VocabSize: 32000, NumHeads: 32, NumKVHeads: 32, NumLayers: 32, HeadDim: 128}
	c := Count(Config{PromptLen: 10, Layers: 30, Gate: GateHeadTanh, Version: V2}, m7)
	// Per block, one bias and one scale per output feature of each linear: q, k, v, o and down output 4096
	// features, gate and up 11008, so biases = scales = 5·4096 + 2·11008 = 42,496 per block; the two RMSNorm
	// weights add 2·4096. The LM head outputs the 32,000-token vocabulary, the final norm is 4096.
	perBlockBiases := 5*4096 + 2*11008
	wantBiases := 32*perBlockBiases + 32000 // 1,359,872 + 32,000 = 1,391,872
	wantNorms := 32*2*4096 + 4096           // 262,144 + 4,096 = 266,240
	wantPrompts, wantGates := 30*10*4096, 30*32
	want := wantPrompts + wantGates + 2*wantBiases + wantNorms // 1,228,800 + 960 + 2,783,744 + 266,240 = 4,279,744
	if c.Biases != wantBiases || c.Scales != wantBiases || c.Norms != wantNorms || c.Prompts != wantPrompts || c.Gates != wantGates {
		t.Errorf("7B V2 counts %+v, want biases = scales = %d, norms %d, prompts %d, gates %d", c, wantBiases, wantNorms, wantPrompts, wantGates)
	}
	if c.Total() != want || want != 4_279_744 {
		t.Errorf("7B V2: %d parameters, want %d (hand computation 4,279,744)", c.Total(), want)
	}
	fmt.Println("LLaMA-7B, LLaMA-Adapter V2 (K=10, L=30):", c.Summary())
	if s := c.Summary(); s != "adapter parameters: prompts 1,228,800 + gates 960 + visual projection 0 + V2 biases 1,391,872 + scales 1,391,872 + norms 266,240 = 4,279,744 trainable (17.1 MB in float32)" {
		t.Errorf("summary: %q", s)
	}
	// The tiny model's count equals the variables New creates.
	m := loadTiny(t)
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Version: V2}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range a.Variables() {
		n += v.Shape().Size()
	}
	if ct := Count(a.Config, m.Config).Total(); ct != n {
		t.Errorf("tiny V2: Count %d, variables hold %d", ct, n)
	}
}
