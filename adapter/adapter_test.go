package adapter

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

type goldenFile struct {
	t *testing.T
	f *safetensors.File
}

func openGolden(t *testing.T, elem ...string) *goldenFile {
	t.Helper()
	f, err := safetensors.Open(assets.Require(t, assets.Golden(elem...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &goldenFile{t, f}
}

func (g *goldenFile) f32(name string) ([]float32, []int) {
	v, s, err := g.f.ReadFloat32(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return v, s
}

func (g *goldenFile) tensor(name string) *tensors.Tensor {
	v, s := g.f32(name)
	return tensors.FromFlatDataAndDimensions(v, s...)
}

func (g *goldenFile) ids() *tensors.Tensor {
	v, s, err := g.f.ReadInt64("input_ids")
	if err != nil {
		g.t.Fatal(err)
	}
	ids := make([]int32, len(v))
	for i, x := range v {
		ids[i] = int32(x)
	}
	return tensors.FromFlatDataAndDimensions(ids, s...)
}

func loadTiny(t *testing.T) *llama.Model {
	t.Helper()
	m, err := llama.Load(assets.Require(t, assets.Golden("llama_tiny")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tinyAdapter builds the adapter_tiny configuration (L=2, K=4) with the golden prompts and the chosen gates.
func tinyAdapter(t *testing.T, m *llama.Model, gate GateMode, gatesName string) *Adapter {
	t.Helper()
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Gate: gate}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	ad := openGolden(t, "adapter_tiny", "adapter.safetensors")
	a.Prompts.MustSetValue(ad.tensor("prompts"))
	if gatesName != "" {
		a.Gates.MustSetValue(ad.tensor(gatesName))
	}
	return a
}

func logits(t *testing.T, m *llama.Model, a *Adapter, ids *tensors.Tensor, visual *tensors.Tensor) []float32 {
	t.Helper()
	var out []*tensors.Tensor
	var err error
	if visual == nil {
		out, err = model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens *Node) *Node {
			in := llama.Inputs{Tokens: tokens}
			if a != nil {
				in.Extension = a.Extension(tokens.Graph(), nil)
			}
			return m.Forward(tokens.Graph(), in).Logits
		}, ids)
	} else {
		out, err = model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens, vis *Node) *Node {
			return m.Forward(tokens.Graph(), llama.Inputs{Tokens: tokens, Extension: a.Extension(tokens.Graph(), vis)}).Logits
		}, ids, visual)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

func TestGoldenZeroGateIsBase(t *testing.T) {
	m := loadTiny(t)
	gold := openGolden(t, "adapter_tiny", "golden.safetensors")
	ids := gold.ids()
	base := logits(t, m, nil, ids, nil)
	a := tinyAdapter(t, m, GateHeadTanh, "") // zero gates, golden prompts
	got := logits(t, m, a, ids, nil)
	// The added term is tanh(0)·A·Vp = 0 exactly. The pure-Go backend runs both graphs op by op, so the logits are
	// bit-identical; XLA compiles the two (different) graphs with different fusions and summation orders, which
	// moves float32 results by rounding only (measured 1.2e-7 here).
	tol := 0.0
	if device.MustShared().Name() != "Go Backend" {
		tol = 1e-5
	}
	if d := assets.MaxAbsDiff(got, base); d > tol {
		t.Errorf("zero-gate logits differ from the base model's by %g (allowed %g on %s)", d, tol, device.MustShared().Name())
	}
	want, _ := gold.f32("logits_zero_gate")
	if d := assets.MaxAbsDiff(got, want); d > 1e-4 {
		t.Errorf("zero-gate logits differ from golden by %g", d)
	}
}

func TestGoldenGateModes(t *testing.T) {
	gold := openGolden(t, "adapter_tiny", "golden.safetensors")
	ids := gold.ids()
	cases := []struct {
		name, golden, gates string
		mode                GateMode
		visual              bool
	}{
		{"tanh_head", "logits_tanh_head", "gates", GateHeadTanh, false},
		{"identity_layer", "logits_identity_layer", "gates_layer", GateLayer, false},
		{"peft", "logits_peft", "gates_layer", GateLayer, false},
		{"tanh_head_visual", "logits_tanh_head_visual", "gates", GateHeadTanh, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadTiny(t)
			a := tinyAdapter(t, m, c.mode, c.gates)
			var vis *tensors.Tensor
			if c.visual {
				vis = openGolden(t, "adapter_tiny", "adapter.safetensors").tensor("visual")
			}
			got := logits(t, m, a, ids, vis)
			want, _ := gold.f32(c.golden)
			d := assets.MaxAbsDiff(got, want)
			if d > 1e-4 {
				t.Errorf("%s: max |diff| = %g > 1e-4", c.golden, d)
			}
			t.Logf("%s: max |diff| = %.3g", c.golden, d)
		})
	}
}

// nextTokenLoss is the mean next-token cross-entropy of logits [B, S, V] on tokens [B, S] (the goldens' loss).
func nextTokenLoss(logits, tokens *Node) *Node {
	S, V := logits.Shape().Dimensions[1], logits.Shape().Dimensions[2]
	logp := LogSoftmax(Slice(logits, AxisRange(), AxisRange(0, S-1)), -1)
	onehot := OneHot(Slice(tokens, AxisRange(), AxisRange(1, S)), V, logp.DType())
	return Neg(ReduceAllMean(ReduceSum(Mul(logp, onehot), -1)))
}

// TestGoldenGradients checks the loss and the gradients w.r.t. prompts, gates and the visual token (GoMLX
// autodiff) against PyTorch's.
func TestGoldenGradients(t *testing.T) {
	gold := openGolden(t, "adapter_tiny", "golden.safetensors")
	m := loadTiny(t)
	a := tinyAdapter(t, m, GateHeadTanh, "gates")
	vis := openGolden(t, "adapter_tiny", "adapter.safetensors").tensor("visual")
	out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens, visual *Node) []*Node {
		g := tokens.Graph()
		loss := nextTokenLoss(m.Forward(g, llama.Inputs{Tokens: tokens, Extension: a.Extension(g, visual)}).Logits, tokens)
		grads := Gradient(loss, a.Prompts.NodeValue(g), a.Gates.NodeValue(g), visual)
		return append([]*Node{loss}, grads...)
	}, gold.ids(), vis)
	if err != nil {
		t.Fatal(err)
	}
	// Tolerances relative to the reference's largest magnitude: gradients here are O(1e-3).
	check := func(name string, got *tensors.Tensor, rel float64) {
		want, _ := gold.f32(name)
		scale := 0.0
		for _, w := range want {
			scale = math.Max(scale, math.Abs(float64(w)))
		}
		tol := rel * scale
		d := assets.MaxAbsDiff(tensors.MustCopyFlatData[float32](got), want)
		if d > tol {
			t.Errorf("%s: max |diff| = %g > %g", name, d, tol)
		}
		t.Logf("%s: max |diff| = %.3g", name, d)
	}
	check("loss_tanh_head_visual", tensors.FromFlatDataAndDimensions([]float32{tensors.ToScalar[float32](out[0])}, 1), 1e-6)
	check("grad_prompts", out[1], 1e-4)
	check("grad_gates", out[2], 1e-4)
	check("grad_visual", out[3], 1e-4)
}

func TestCount7B(t *testing.T) {
	m7 := llama.Config{Dim: 4096, NumHeads: 32, NumKVHeads: 32, NumLayers: 32, HeadDim: 128}
	c := Count(Config{PromptLen: 10, Layers: 30, Gate: GateHeadTanh}, m7)
	if c.Total() != 1_229_760 {
		t.Errorf("7B K=10 L=30 head-tanh: %d parameters, want 1,229,760", c.Total())
	}
	if s := c.Summary(); s != "adapter parameters: prompts 1,228,800 + gates 960 + visual projection 0 = 1,229,760 trainable (4.9 MB in float32)" {
		t.Errorf("summary: %q", s)
	}
	v := Count(Config{PromptLen: 10, Layers: 30, Visual: &VisualConfig{Scales: 3, FeatureDim: 1024}}, m7)
	if v.Projection != 599_123 {
		t.Errorf("ViT-L/14 3-scale projection: %d parameters, want 599,123", v.Projection)
	}
}

// TestOfficialImportExport loads the official v1 release layout (.pth) and checks it gives logits_tanh_head; export
// then import round-trips bit for bit.
func TestOfficialImportExport(t *testing.T) {
	gold := openGolden(t, "adapter_tiny", "golden.safetensors")
	m := loadTiny(t)
	a, err := ImportOfficial(assets.Require(t, assets.Golden("adapter_tiny", "official_adapter.pth")), m.Store, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.Layers != 2 || a.Config.PromptLen != 4 {
		t.Fatalf("imported L=%d K=%d, want 2, 4", a.Config.Layers, a.Config.PromptLen)
	}
	want, _ := gold.f32("logits_tanh_head")
	if d := assets.MaxAbsDiff(logits(t, m, a, gold.ids(), nil), want); d > 1e-4 {
		t.Errorf("official adapter: logits differ from logits_tanh_head by %g", d)
	}
	path := filepath.Join(t.TempDir(), "exported.pth")
	if err := a.ExportOfficial(path); err != nil {
		t.Fatal(err)
	}
	sameAfterReload(t, a, path, ImportOfficial, "export/import")
}

// sameAfterReload reads path with read into a fresh tiny model and checks that its variables are a's, bit for bit.
func sameAfterReload(t *testing.T, a *Adapter, path string, read func(string, *model.Store, llama.Config) (*Adapter, error), what string) {
	t.Helper()
	m := loadTiny(t)
	b, err := read(path, m.Store, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	sameVariables(t, a, b, what)
}

// sameVariables checks that two adapters' variables are bit-identical.
func sameVariables(t *testing.T, a, b *Adapter, what string) {
	t.Helper()
	for i, v := range a.Variables() {
		x := tensors.MustCopyFlatData[float32](v.MustValue())
		y := tensors.MustCopyFlatData[float32](b.Variables()[i].MustValue())
		for k := range x {
			if math.Float32bits(x[k]) != math.Float32bits(y[k]) {
				t.Fatalf("variable %s differs after %s at %d", v.Name(), what, k)
			}
		}
	}
}

// TestSaveLoadAndMismatches round-trips the project's format and checks clear errors for adapters that do not fit.
func TestSaveLoadAndMismatches(t *testing.T) {
	m := loadTiny(t)
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Init: InitRandom, Seed: 5, Visual: &VisualConfig{Scales: 2, FeatureDim: 8}}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "adapter.safetensors")
	if err := a.Save(path, map[string]string{"run_id": "x"}); err != nil {
		t.Fatal(err)
	}
	sameAfterReload(t, a, path, Load, "save/load")
	// Models the adapter does not fit.
	mk := func(mut func(c *llama.Config)) llama.Config {
		c := m.Config
		mut(&c)
		return c
	}
	cases := map[string]struct {
		cfg  llama.Config
		want string
	}{
		"C":      {mk(func(c *llama.Config) { c.Dim = 128 }), "C=64"},
		"heads":  {mk(func(c *llama.Config) { c.NumHeads = 8 }), "4 heads"},
		"layers": {mk(func(c *llama.Config) { c.NumLayers = 1 }), "L=2"},
		"depth":  {mk(func(c *llama.Config) { c.NumLayers = 6 }), "4-layer model"},
	}
	for name, c := range cases {
		_, err := Load(path, model.NewStore(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "adapter.safetensors") {
			t.Errorf("%s: error %v should name the file and mention %q", name, err, c.want)
		}
	}
	// The official file into a model with a different width or head count.
	_, err = ImportOfficial(assets.Golden("adapter_tiny", "official_adapter.pth"), model.NewStore(), cases["C"].cfg)
	if err == nil || !strings.Contains(err.Error(), "official_adapter.pth") {
		t.Errorf("official import into C=128: %v", err)
	}
	_, err = ImportOfficial(assets.Golden("adapter_tiny", "official_adapter.pth"), model.NewStore(), cases["heads"].cfg)
	if err == nil || !strings.Contains(err.Error(), "heads") {
		t.Errorf("official import into 8 heads: %v", err)
	}
}
