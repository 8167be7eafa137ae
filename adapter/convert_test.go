package adapter

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/torchpth"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func interop(t *testing.T, elem ...string) string {
	t.Helper()
	return assets.Require(t, assets.Golden(append([]string{"interop_tiny"}, elem...)...))
}

// tinyWeights returns adapter_tiny's prompts with the named gates under formula gate (llama_tiny: N=4, C=64, H=4).
func tinyWeights(t *testing.T, gate GateMode, gatesName string) *Weights {
	t.Helper()
	ad := openGolden(t, "adapter_tiny", "adapter.safetensors")
	p, _ := ad.f32("prompts")
	g, _ := ad.f32(gatesName)
	w := &Weights{Config: Config{Layers: 2, PromptLen: 4, Gate: gate}.Defaults(), NumLayers: 4, Dim: 64, NumHeads: 4, Prompts: p, Gates: g}
	if err := w.check(); err != nil {
		t.Fatal(err)
	}
	return w
}

// tinyHeadWeights are adapter_tiny's weights converted to the head formula (tanh applied to the gates).
func tinyHeadWeights(t *testing.T) *Weights {
	t.Helper()
	w, err := tinyWeights(t, GateHeadTanh, "gates").WithGate(GateHead)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// headTiny builds tinyHeadWeights as an adapter on m.
func headTiny(t *testing.T, m *llama.Model) (*Weights, *Adapter) {
	t.Helper()
	w := tinyHeadWeights(t)
	a, err := w.NewAdapter(m.Store, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	return w, a
}

// bitEqual reports the first difference between two weights' tensors (bit for bit), or "".
func bitEqual(a, b *Weights) string {
	if a.Config.Layers != b.Config.Layers || a.Config.PromptLen != b.Config.PromptLen || a.Config.Gate != b.Config.Gate ||
		a.NumLayers != b.NumLayers || a.Dim != b.Dim {
		return fmt.Sprintf("config (L, K, gate, N, C: %d %d %s %d %d vs %d %d %s %d %d)", a.Config.Layers, a.Config.PromptLen, a.Config.Gate,
			a.NumLayers, a.Dim, b.Config.Layers, b.Config.PromptLen, b.Config.Gate, b.NumLayers, b.Dim)
	}
	same := func(x, y []float32) bool {
		return slices.EqualFunc(x, y, func(p, q float32) bool { return math.Float32bits(p) == math.Float32bits(q) })
	}
	if !same(a.Prompts, b.Prompts) {
		return "prompts"
	}
	if !same(a.Gates, b.Gates) {
		return "gates"
	}
	if len(a.Visual) != len(b.Visual) {
		return "visual tensor count"
	}
	for i := range a.Visual {
		if a.Visual[i].Name != b.Visual[i].Name || !slices.Equal(a.Visual[i].Shape, b.Visual[i].Shape) || !same(a.Visual[i].Values, b.Visual[i].Values) {
			return a.Visual[i].Name
		}
	}
	return ""
}

func mustRead(t *testing.T, path string, want Format) *Weights {
	t.Helper()
	w, f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f != want {
		t.Fatalf("%s: detected format %s, want %s", path, f, want)
	}
	return w
}

// TestInteropGoldens: the files peft and litgpt wrote, opened onto llama_tiny, give the logits of their formulas:
// peft's folder gives logits_peft (peft's own forward after reloading it); litgpt's file, whose gating_factor is
// tanh of adapter_tiny's gates used as is, gives adapter_tiny's logits_tanh_head. The head formula is also checked
// on its own, with the golden gates' tanh computed here.
func TestInteropGoldens(t *testing.T) {
	gold := openGolden(t, "interop_tiny", "golden.safetensors")
	tiny := openGolden(t, "adapter_tiny", "golden.safetensors")
	ids := tiny.ids()
	cases := []struct {
		name, path, golden string
		g                  *goldenFile
		gate               GateMode
	}{
		{"peft", interop(t, "peft"), "logits_peft", gold, GateLayer},
		{"litgpt", interop(t, "litgpt", "lit_model.pth.adapter"), "logits_tanh_head", tiny, GateHead},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadTiny(t)
			a, err := Open(c.path, m.Store, m.Config, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Config.Gate != c.gate || a.Config.Layers != 2 || a.Config.PromptLen != 4 {
				t.Fatalf("opened as L=%d K=%d gate %s, want L=2 K=4 gate %s", a.Config.Layers, a.Config.PromptLen, a.Config.Gate, c.gate)
			}
			want, _ := c.g.f32(c.golden)
			d := assets.MaxAbsDiff(logits(t, m, a, ids, nil), want)
			if d > 1e-5 {
				t.Errorf("%s: max |diff| = %g > 1e-5", c.golden, d)
			}
			t.Logf("%s vs %s: max |diff| = %.3g", c.path, c.golden, d)
		})
	}
	t.Run("head_formula", func(t *testing.T) {
		m := loadTiny(t)
		w, a := headTiny(t, m)
		want, _ := tiny.f32("logits_tanh_head")
		if d := assets.MaxAbsDiff(logits(t, m, a, ids, nil), want); d > 1e-5 {
			t.Errorf("head with tanh(gates): max |diff| from logits_tanh_head = %g > 1e-5", d)
		}
		// litgpt's gating_factor holds torch's float32 tanh of the same gates.
		lit := mustRead(t, interop(t, "litgpt", "lit_model.pth.adapter"), FormatLitGPT)
		for i, g := range w.Gates {
			if d := math.Abs(float64(g - lit.Gates[i])); d > 1e-7 {
				t.Errorf("gate %d: tanh here %g, litgpt's gating_factor %g", i, g, lit.Gates[i])
			}
		}
		if s := bitEqual(&Weights{Config: w.Config, NumLayers: 4, Dim: 64, Prompts: w.Prompts, Gates: lit.Gates}, lit); s != "" {
			t.Errorf("litgpt file vs adapter_tiny: %s differ", s)
		}
	})
}

// TestGateHeadGradient: under the head formula the gates' gradient is head-tanh's divided by tanh's derivative
// (g_head = tanh(g) gives ∂L/∂g = ∂L/∂g_head · (1 − tanh²g)), against PyTorch's golden gradients.
func TestGateHeadGradient(t *testing.T) {
	gold := openGolden(t, "adapter_tiny", "golden.safetensors")
	m := loadTiny(t)
	w, a := headTiny(t, m)
	vis := openGolden(t, "adapter_tiny", "adapter.safetensors").tensor("visual")
	out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens, visual *Node) []*Node {
		g := tokens.Graph()
		loss := nextTokenLoss(m.Forward(g, llama.Inputs{Tokens: tokens, Extension: a.Extension(g, visual)}).Logits, tokens)
		return append([]*Node{loss}, Gradient(loss, a.Gates.NodeValue(g))...)
	}, gold.ids(), vis)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, _ := gold.f32("loss_tanh_head_visual")
	if d := math.Abs(float64(tensors.ToScalar[float32](out[0]) - wantLoss[0])); d > 1e-6*math.Abs(float64(wantLoss[0])) {
		t.Errorf("loss: |diff| = %g", d)
	}
	want, _ := gold.f32("grad_gates")
	got := tensors.MustCopyFlatData[float32](out[1])
	scale := 0.0
	for i, x := range want {
		scale = math.Max(scale, math.Abs(float64(x)))
		got[i] *= 1 - w.Gates[i]*w.Gates[i]
	}
	if d := assets.MaxAbsDiff(got, want); d > 1e-4*scale {
		t.Errorf("head gradient × (1 − tanh²) vs grad_gates: max |diff| = %g > %g", d, 1e-4*scale)
	}
}

// TestGateHeadRandomInit: under InitRandom the head formula stores tanh of head-tanh's draw, so the two start as
// the same model with every gate in (-1, 1).
func TestGateHeadRandomInit(t *testing.T) {
	m := loadTiny(t)
	mk := func(g GateMode) *Adapter {
		a, err := New(model.NewStore(), Config{Layers: 2, PromptLen: 4, Gate: g, Init: InitRandom, Seed: 3}, m.Config)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ht, h := mk(GateHeadTanh), mk(GateHead)
	gt := tensors.MustCopyFlatData[float32](ht.Gates.MustValue())
	gh := tensors.MustCopyFlatData[float32](h.Gates.MustValue())
	nonzero := false
	for i := range gt {
		if want := float32(math.Tanh(float64(gt[i]))); gh[i] != want {
			t.Errorf("gate %d: head %g, want tanh(%g) = %g", i, gh[i], gt[i], want)
		}
		nonzero = nonzero || gh[i] != 0
	}
	if !nonzero || !slices.Equal(tensors.MustCopyFlatData[float32](ht.Prompts.MustValue()), tensors.MustCopyFlatData[float32](h.Prompts.MustValue())) {
		t.Error("random init: gates all zero or prompts differ between head-tanh and head")
	}
}

// TestExactRoundTrips writes every exact pair and reads it back tensor for tensor, bit for bit.
func TestExactRoundTrips(t *testing.T) {
	dir := t.TempDir()
	headTanh := tinyWeights(t, GateHeadTanh, "gates")
	layer := tinyWeights(t, GateLayer, "gates_layer")
	head, err := headTanh.WithGate(GateHead)
	if err != nil {
		t.Fatal(err)
	}
	visual := tinyWeights(t, GateHeadTanh, "gates")
	visual.Config.Visual = &VisualConfig{Scales: 2, FeatureDim: 3, Hidden: 5, Depth: 2}
	visual.Visual = []Tensor{{"visual.w0", []int{5, 6}, make([]float32, 30)}, {"visual.b0", []int{5}, make([]float32, 5)},
		{"visual.w1", []int{64, 5}, make([]float32, 320)}, {"visual.b1", []int{64}, make([]float32, 64)}}
	for i := range visual.Visual {
		for k := range visual.Visual[i].Values {
			visual.Visual[i].Values[k] = float32(i*1000+k) / 7
		}
	}
	cases := []struct {
		name string
		w    *Weights
		f    Format
		file string
	}{
		{"head-tanh/toolkit", headTanh, FormatToolkit, "a.safetensors"},
		{"head/toolkit", head, FormatToolkit, "b.safetensors"},
		{"layer/toolkit", layer, FormatToolkit, "c.safetensors"},
		{"visual/toolkit", visual, FormatToolkit, "d.safetensors"},
		{"head-tanh/official", headTanh, FormatOfficial, "e.pth"},
		{"head/litgpt", head, FormatLitGPT, "lit_model.pth.adapter"},
		{"layer/peft", layer, FormatPeft, "peft"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.file)
		if err := c.w.Write(path, c.f, WriteOptions{}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s := bitEqual(c.w, mustRead(t, path, c.f)); s != "" {
			t.Errorf("%s: %s differ after write and read", c.name, s)
		}
	}
	// Through Convert: the golden foreign files into the toolkit's format and back are bit-exact.
	for _, c := range []struct {
		in   string
		f    Format
		opts ConvertOptions
	}{
		{interop(t, "peft"), FormatPeft, ConvertOptions{Heads: 4}},
		{interop(t, "litgpt", "lit_model.pth.adapter"), FormatLitGPT, ConvertOptions{}},
		{assets.Require(t, assets.Golden("adapter_tiny", "official_adapter.pth")), FormatOfficial, ConvertOptions{}},
	} {
		orig := mustRead(t, c.in, c.f)
		mid, back := filepath.Join(dir, string(c.f)+".safetensors"), filepath.Join(dir, string(c.f)+"-back")
		if from, err := Convert(c.in, mid, FormatToolkit, c.opts); err != nil || from != c.f {
			t.Fatalf("%s → toolkit: format %s, %v", c.in, from, err)
		}
		if _, err := Convert(mid, back, c.f, ConvertOptions{}); err != nil {
			t.Fatalf("toolkit → %s: %v", c.f, err)
		}
		if s := bitEqual(orig, mustRead(t, back, c.f)); s != "" {
			t.Errorf("%s → toolkit → %s: %s differ", c.in, c.f, s)
		}
	}
	// layer → head (litgpt, repeated) → layer (peft, equal heads) is bit-exact. Paths through head-tanh round in
	// tanh/atanh; TestGateMath checks them.
	lit := filepath.Join(dir, "from-peft.pth.adapter")
	if _, err := Convert(interop(t, "peft"), lit, FormatLitGPT, ConvertOptions{Heads: 4}); err != nil {
		t.Fatal(err)
	}
	peft := filepath.Join(dir, "peft-again")
	if _, err := Convert(lit, peft, FormatPeft, ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := bitEqual(mustRead(t, interop(t, "peft"), FormatPeft), mustRead(t, peft, FormatPeft)); s != "" {
		t.Errorf("peft → litgpt → peft: %s differ", s)
	}
	// official (head-tanh) → litgpt stores tanh(g): the golden litgpt file's gates within 1e-7 (torch's float32 tanh).
	lit2 := filepath.Join(dir, "from-official.pth.adapter")
	if _, err := Convert(assets.Golden("adapter_tiny", "official_adapter.pth"), lit2, FormatLitGPT, ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := assets.MaxAbsDiff(mustRead(t, lit2, FormatLitGPT).Gates, mustRead(t, interop(t, "litgpt", "lit_model.pth.adapter"), FormatLitGPT).Gates); d > 1e-7 {
		t.Errorf("official → litgpt gates differ from litgpt's file by %g", d)
	}
}

// TestGateMath: the value each head is multiplied by is kept by every allowed conversion.
func TestGateMath(t *testing.T) {
	w := tinyWeights(t, GateHeadTanh, "gates")
	eq := w.clone()
	for j := 0; j < 2; j++ {
		for h := 0; h < 4; h++ {
			eq.Gates[j*4+h] = float32(0.3 - 0.5*float64(j)) // equal heads per layer
		}
	}
	for _, src := range []*Weights{w, eq} {
		for _, to := range GateModes {
			out, err := src.WithGate(to)
			if to == GateLayer && src == w {
				assets.WantErr(t, err, "head-tanh with unequal heads → layer", "gated differently", "head", "peft")
				continue
			}
			if err != nil {
				t.Fatalf("%s → %s: %v", src.Config.Gate, to, err)
			}
			for i := 0; i < 8; i++ {
				k := i
				if to == GateLayer {
					k = i / 4
				}
				if d := math.Abs(src.gateValue(i) - out.gateValue(k)); d > 1e-7 {
					t.Errorf("%s → %s: gate %d multiplies by %g, was %g", src.Config.Gate, to, i, out.gateValue(k), src.gateValue(i))
				}
			}
			// And back to head-tanh: exact up to atanh's float32 rounding.
			back, err := out.WithGate(GateHeadTanh)
			if err != nil {
				t.Fatal(err)
			}
			if to != GateLayer {
				if d := assets.MaxAbsDiff(back.Gates, src.Gates); d > 1e-6 {
					t.Errorf("%s → %s → head-tanh: gates move by %g", src.Config.Gate, to, d)
				}
			}
		}
	}
}

// TestRefusals: every conversion that cannot be exact is refused with the reason and the formula that carries it.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	w := tinyWeights(t, GateHeadTanh, "gates")
	// Unequal heads → one gate per layer.
	assets.WantErr(t, w.Write(filepath.Join(dir, "p"), FormatPeft, WriteOptions{}), "head-tanh written as peft", "stores layer gates")
	_, err := Convert(assets.Golden("adapter_tiny", "official_adapter.pth"), filepath.Join(dir, "p"), FormatPeft, ConvertOptions{})
	assets.WantErr(t, err, "official → peft", "gated differently", "one gate per layer", "head-tanh", "head (litgpt)")
	// A visual projection → a format without one.
	v := w.clone()
	v.Config.Visual = &VisualConfig{Scales: 1, FeatureDim: 2, Depth: 1}
	v.Visual = []Tensor{{"visual.w0", []int{64, 2}, make([]float32, 128)}, {"visual.b0", []int{64}, make([]float32, 64)}}
	toolkit := filepath.Join(dir, "visual.safetensors")
	if err := v.Write(toolkit, FormatToolkit, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{FormatOfficial, FormatLitGPT, FormatPeft} {
		_, err := Convert(toolkit, filepath.Join(dir, "v-"+string(f)), f, ConvertOptions{})
		assets.WantErr(t, err, "visual → "+string(f), "visual projection", "toolkit")
	}
	// |g| ≥ 1 → head-tanh.
	big := tinyHeadWeights(t)
	big.Gates[5] = 1.5
	lit := filepath.Join(dir, "big.pth.adapter")
	if err := big.Write(lit, FormatLitGPT, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Convert(lit, filepath.Join(dir, "big.pth"), FormatOfficial, ConvertOptions{})
	assets.WantErr(t, err, "litgpt |g|=1.5 → official", "layer 3 head 1", "atanh is undefined", "keep head")
	_, err = Convert(lit, filepath.Join(dir, "big.safetensors"), FormatToolkit, ConvertOptions{Gate: GateHeadTanh})
	assets.WantErr(t, err, "litgpt |g|=1.5 → toolkit head-tanh", "atanh is undefined")
	// The same file as the toolkit's with its own formula is fine.
	if _, err := Convert(lit, filepath.Join(dir, "big.safetensors"), FormatToolkit, ConvertOptions{}); err != nil {
		t.Errorf("litgpt → toolkit (head): %v", err)
	}
	// A formula the output format does not store.
	_, err = Convert(lit, filepath.Join(dir, "x.pth.adapter"), FormatLitGPT, ConvertOptions{Gate: GateLayer})
	assets.WantErr(t, err, "-to litgpt -gate layer", "litgpt format stores head gates only", "toolkit")
	// peft does not record the head count.
	_, err = Convert(interop(t, "peft"), filepath.Join(dir, "y.pth.adapter"), FormatLitGPT, ConvertOptions{})
	assets.WantErr(t, err, "peft → litgpt without -heads", "heads", "-heads H")
	_, err = Convert(interop(t, "peft"), filepath.Join(dir, "y.safetensors"), FormatToolkit, ConvertOptions{})
	assets.WantErr(t, err, "peft → toolkit without -heads", "-heads H")
	_, err = Convert(lit, filepath.Join(dir, "z.safetensors"), FormatToolkit, ConvertOptions{Heads: 8})
	assets.WantErr(t, err, "litgpt with -heads 8", "gating_factor", "4 heads, not 8")
	// Exporting an adapter whose formula the official layout lacks.
	m := loadTiny(t)
	a, err := New(m.Store, Config{Layers: 2, PromptLen: 4, Gate: GateHead}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	assets.WantErr(t, a.ExportOfficial(filepath.Join(dir, "head.pth")), "official export of head gates", "official format stores head-tanh gates")
	b, err := New(model.NewStore(), Config{Layers: 2, PromptLen: 4, Visual: &VisualConfig{Scales: 1, FeatureDim: 2}}, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	assets.WantErr(t, b.ExportOfficial(filepath.Join(dir, "vis.pth")), "official export of a visual adapter", "visual projection")
}

// TestOpenMismatches: a file that does not fit the model is an error naming the file and the tensor or field
// that says so.
func TestOpenMismatches(t *testing.T) {
	m := loadTiny(t)
	mk := func(mut func(c *llama.Config)) llama.Config {
		c := m.Config
		mut(&c)
		return c
	}
	lit, peft := interop(t, "litgpt", "lit_model.pth.adapter"), interop(t, "peft")
	cases := []struct {
		name, path string
		cfg        llama.Config
		want       []string
	}{
		{"litgpt C", lit, mk(func(c *llama.Config) { c.Dim = 128 }), []string{"lit_model.pth.adapter", "transformer.h.2.attn.adapter_wte.weight", "C=64", "C=128"}},
		{"litgpt heads", lit, mk(func(c *llama.Config) { c.NumHeads = 8 }), []string{"transformer.h.2.attn.gating_factor", "4 heads", "8 heads"}},
		{"litgpt depth", lit, mk(func(c *llama.Config) { c.NumLayers = 6 }), []string{"transformer.h.{i}", "layers 2..3", "4-layer model", "6 layers"}},
		{"peft C", peft, mk(func(c *llama.Config) { c.Dim = 128 }), []string{"peft", "layers.2.self_attn.adaption_prompt", "C=64"}},
		{"peft depth", peft, mk(func(c *llama.Config) { c.NumLayers = 3 }), []string{"peft", "4-layer model", "3 layers"}},
		{"official heads", assets.Golden("adapter_tiny", "official_adapter.pth"), mk(func(c *llama.Config) { c.NumHeads = 8 }), []string{"official_adapter.pth", "layers.2.attention.gate", "4 heads"}},
	}
	for _, c := range cases {
		_, err := Open(c.path, model.NewStore(), c.cfg, OpenOptions{})
		assets.WantErr(t, err, c.name, c.want...)
	}
	// peft opened with another formula: head repeats the per-layer gate, and needs no -heads (the model says).
	a, err := Open(peft, m.Store, m.Config, OpenOptions{Gate: GateHead})
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Gates.Shape().Dimensions; !slices.Equal(s, []int{2, 4}) {
		t.Errorf("peft opened as head: gates %v, want [2 4]", s)
	}
}

// TestDetectFormat covers every way an adapter is named.
func TestDetectFormat(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tinyWeights(t, GateHeadTanh, "gates").Write(filepath.Join(run, RunFolderFile), FormatToolkit, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, resolved string
		want           Format
	}{
		{interop(t, "peft"), interop(t, "peft"), FormatPeft},
		{interop(t, "peft", "adapter_model.safetensors"), interop(t, "peft"), FormatPeft},
		{interop(t, "litgpt", "lit_model.pth.adapter"), "", FormatLitGPT},
		{assets.Golden("adapter_tiny", "official_adapter.pth"), "", FormatOfficial},
		{run, filepath.Join(run, RunFolderFile), FormatToolkit},
		{filepath.Join(run, RunFolderFile), "", FormatToolkit},
	} {
		f, p, err := DetectFormat(c.path)
		if c.resolved == "" {
			c.resolved = c.path
		}
		if err != nil || f != c.want || p != c.resolved {
			t.Errorf("%s: %s %s %v, want %s %s", c.path, f, p, err, c.want, c.resolved)
		}
	}
	_, _, err := DetectFormat(dir)
	assets.WantErr(t, err, "empty folder", "adapter_config.json")
	_, _, err = DetectFormat(assets.Golden("llama_tiny_meta", "consolidated.00.pth"))
	assets.WantErr(t, err, "a model checkpoint", "neither transformer.h")
}

// TestPeftFolderMatchesGolden: the folder written from peft's own folder has the same file names, config fields,
// tensor names, shapes, dtypes, safetensors "format" metadata and bytes.
func TestPeftFolderMatchesGolden(t *testing.T) {
	golden := interop(t, "peft")
	out := filepath.Join(t.TempDir(), "peft")
	if _, err := Convert(golden, out, FormatPeft, ConvertOptions{BaseModel: "llama_tiny"}); err != nil {
		t.Fatal(err)
	}
	names := func(dir string) []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return n
	}
	if g, o := names(golden), names(out); !slices.Equal(g, o) {
		t.Errorf("files %v, golden %v", o, g)
	}
	readJSON := func(p string) map[string]any {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if g, o := readJSON(filepath.Join(golden, peftConfigFile)), readJSON(filepath.Join(out, peftConfigFile)); !reflect.DeepEqual(g, o) {
		t.Errorf("adapter_config.json:\n%v\ngolden:\n%v", o, g)
	}
	open := func(dir string) *safetensors.File {
		f, err := safetensors.Open(filepath.Join(dir, peftWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	g, o := open(golden), open(out)
	gn, on := slices.Sorted(slices.Values(g.Names())), slices.Sorted(slices.Values(o.Names()))
	if !slices.Equal(gn, on) {
		t.Fatalf("tensors %v, golden %v", on, gn)
	}
	if o.Metadata["format"] != g.Metadata["format"] {
		t.Errorf("metadata format %q, golden %q", o.Metadata["format"], g.Metadata["format"])
	}
	for _, n := range gn {
		gi, _ := g.Info(n)
		oi, _ := o.Info(n)
		if gi.DType != oi.DType || !slices.Equal(gi.Shape, oi.Shape) {
			t.Errorf("%s: %s %v, golden %s %v", n, oi.DType, oi.Shape, gi.DType, gi.Shape)
		}
		gr, _, _ := g.ReadRaw(n, nil)
		or, _, _ := o.ReadRaw(n, nil)
		if !slices.Equal(gr, or) {
			t.Errorf("%s: bytes differ", n)
		}
	}
}

// TestLitGPTFileLayout: the written litgpt file has the golden's pickle layout as our reader sees it: the state
// dict nested under "model", the same names in the same order, shapes and dtypes, and identical bytes.
func TestLitGPTFileLayout(t *testing.T) {
	golden := interop(t, "litgpt", "lit_model.pth.adapter")
	out := filepath.Join(t.TempDir(), "lit_model.pth.adapter")
	if _, err := Convert(golden, out, FormatLitGPT, ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
	open := func(p string) *torchpth.File {
		f, err := torchpth.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	g, o := open(golden), open(out)
	if !slices.Equal(g.Names(), o.Names()) || !strings.HasPrefix(o.Names()[0], "model.transformer.h.2.") {
		t.Fatalf("names %v, golden %v", o.Names(), g.Names())
	}
	for _, n := range g.Names() {
		gr, gi, err := g.ReadRaw(n, nil)
		if err != nil {
			t.Fatal(err)
		}
		or, oi, err := o.ReadRaw(n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if gi.DType != oi.DType || !slices.Equal(gi.Shape, oi.Shape) || !slices.Equal(gi.Stride, oi.Stride) || !slices.Equal(gr, or) {
			t.Errorf("%s: %s %v %v differs from golden %s %v %v", n, oi.DType, oi.Shape, oi.Stride, gi.DType, gi.Shape, gi.Stride)
		}
	}
}
