package adapter

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/torchpth"
)

// litgptFromGolden writes adapter_v2_tiny's tensors in litgpt's adapter_v2 layout, built here by hand from the
// HF-named golden tensors (q;k;v concatenated into qkv, gating_factor = tanh(gates) as [1, 1, H, 1]): the
// arrangement the golden's litgpt cross-check used.
func litgptFromGolden(t *testing.T, path string, nested bool) {
	t.Helper()
	gold := openGolden(t, "adapter_v2_tiny", "adapter_v2.safetensors")
	prefix := ""
	if nested {
		prefix = "model." // what torch.save({"model": ...}) reads back as
	}
	var ts []torchpth.Tensor
	add := func(name string, shape []int, vals []float32) {
		ts = append(ts, torchpth.Float32Tensor(prefix+name, shape, vals, safetensors.F32))
	}
	prompts, _ := gold.f32("prompts") // [2, 4, 64]: layers 2 and 3
	gates, _ := gold.f32("gates")     // [2, 4]
	for j := 0; j < 2; j++ {
		gf := make([]float32, 4)
		for h := range gf {
			gf[h] = float32(math.Tanh(float64(gates[j*4+h])))
		}
		add(fmt.Sprintf("transformer.h.%d.attn.adapter_wte.weight", 2+j), []int{4, 64}, prompts[j*256:(j+1)*256])
		add(fmt.Sprintf("transformer.h.%d.attn.gating_factor", 2+j), []int{1, 1, 4, 1}, gf)
	}
	for i := 0; i < 4; i++ {
		hf := fmt.Sprintf("model.layers.%d.", i)
		lit := fmt.Sprintf("transformer.h.%d.", i)
		for _, what := range []string{"adapter_bias", "adapter_scale"} {
			q, _ := gold.f32(hf + "self_attn.q_proj." + what)
			k, _ := gold.f32(hf + "self_attn.k_proj." + what)
			v, _ := gold.f32(hf + "self_attn.v_proj." + what)
			qkv := append(append(append([]float32{}, q...), k...), v...)
			add(lit+"attn.qkv."+what, []int{len(qkv)}, qkv)
			for _, p := range [][2]string{{"self_attn.o_proj", "attn.proj"}, {"mlp.gate_proj", "mlp.fc_1"}, {"mlp.up_proj", "mlp.fc_2"}, {"mlp.down_proj", "mlp.proj"}} {
				x, s := gold.f32(hf + p[0] + "." + what)
				add(lit+p[1]+"."+what, s, x)
			}
		}
		n1, _ := gold.f32(hf + "input_layernorm.weight")
		n2, _ := gold.f32(hf + "post_attention_layernorm.weight")
		add(lit+"norm_1.weight", []int{64}, n1)
		add(lit+"norm_2.weight", []int{64}, n2)
	}
	lnf, _ := gold.f32("model.norm.weight")
	add("transformer.ln_f.weight", []int{64}, lnf)
	for _, what := range []string{"adapter_bias", "adapter_scale"} {
		x, _ := gold.f32("lm_head." + what)
		add("lm_head."+what, []int{256}, x)
	}
	if err := torchpth.Write(path, ts); err != nil {
		t.Fatal(err)
	}
}

// TestLitGPTV2ImportExport: a litgpt adapter_v2 state dict of the golden tensors (flat and nested under "model")
// imports to logits_v2 within 1e-4; export writes the same tensors (V2 terms and prompts bit for bit, gating
// factors within float32 tanh/atanh rounding), and re-import gives the same adapter.
func TestLitGPTV2ImportExport(t *testing.T) {
	gold := openGolden(t, "adapter_v2_tiny", "golden.safetensors")
	want, _ := gold.f32("logits_v2")
	dir := t.TempDir()
	for _, nested := range []bool{false, true} {
		src := filepath.Join(dir, fmt.Sprintf("lit_model_%v.pth.adapter_v2", nested))
		litgptFromGolden(t, src, nested)
		m := loadTiny(t)
		a, err := ImportLitGPTV2(src, m.Store, m.Config)
		if err != nil {
			t.Fatal(err)
		}
		if a.Config.Layers != 2 || a.Config.PromptLen != 4 || a.V2 == nil {
			t.Fatalf("imported %+v", a.Config)
		}
		if d := assets.MaxAbsDiff(logits(t, m, a, gold.ids(), nil), want); d > 1e-4 {
			t.Errorf("nested %v: imported litgpt adapter's logits differ from logits_v2 by %g", nested, d)
		}
		if nested {
			continue
		}
		out := filepath.Join(dir, "exported.pth")
		if err := a.ExportLitGPTV2(out); err != nil {
			t.Fatal(err)
		}
		x, err := torchpth.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		y, err := torchpth.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if xn, yn := strings.Join(x.Names(), ","), strings.Join(y.Names(), ","); len(x.Names()) != len(y.Names()) {
			t.Errorf("exported names differ:\n%s\n%s", yn, xn)
		}
		for _, name := range x.Names() {
			xv, _, err := x.ReadFloat32(name)
			if err != nil {
				t.Fatal(err)
			}
			yv, _, err := y.ReadFloat32(name)
			if err != nil {
				t.Errorf("exported file: %v", err)
				continue
			}
			tol := 0.0
			if strings.HasSuffix(name, "gating_factor") {
				tol = 1e-6
			}
			for i := range xv {
				if d := math.Abs(float64(xv[i] - yv[i])); d > tol {
					t.Errorf("%s[%d]: exported %g, source %g", name, i, yv[i], xv[i])
					break
				}
			}
		}
		x.Close()
		y.Close()
		m2 := loadTiny(t)
		b, err := ImportLitGPTV2(out, m2.Store, m2.Config)
		if err != nil {
			t.Fatal(err)
		}
		v2a, _ := a.V2.variables()
		v2b, _ := b.V2.variables()
		for i := range v2a {
			p, _ := variableValues(v2a[i])
			q, _ := variableValues(v2b[i])
			for k := range p {
				if math.Float32bits(p[k]) != math.Float32bits(q[k]) {
					t.Fatalf("%s differs after export/import at %d", v2a[i].Name(), k)
				}
			}
		}
	}
	// A litgpt V1 adapter (no V2 terms) is refused with the missing tensor named.
	m := loadTiny(t)
	_, err := ImportLitGPTV2(assets.Require(t, assets.Golden("interop_tiny", "litgpt", "lit_model.pth.adapter")), m.Store, m.Config)
	if err == nil || !strings.Contains(err.Error(), `"transformer.h.0.norm_1.weight"`) {
		t.Errorf("litgpt v1 file: error %v should name a missing V2 tensor", err)
	}
}
