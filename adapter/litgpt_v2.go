package adapter

// litgpt's adapter_v2 checkpoints (litgpt 0.5: finetune/adapter_v2 saves torch.save({"model": state dict}) of the
// tensors its adapter_filter keeps). Per layer i of the N, in litgpt's module names:
//
//	transformer.h.i.attn.qkv.adapter_bias|adapter_scale    [(H+2·KVH)·D]  q;k;v concatenated (its fused projection)
//	transformer.h.i.attn.proj.adapter_bias|adapter_scale   [C]            o_proj
//	transformer.h.i.mlp.fc_1 | fc_2 | proj .adapter_*      [F] [F] [C]    gate_proj, up_proj, down_proj
//	transformer.h.i.norm_1.weight, norm_2.weight           [C]            input / post-attention RMSNorm
//	transformer.ln_f.weight [C], lm_head.adapter_bias|adapter_scale [V]
//	transformer.h.i.attn.adapter_wte.weight [K, C], transformer.h.i.attn.gating_factor [1, 1, H, 1]  (i ≥ N−L)
//
// litgpt applies gating_factor as it is (no tanh), so the import stores atanh(gating_factor) as head-tanh gates
// and the export writes tanh(gates): exact up to float32 rounding of tanh/atanh. Its bias/scale formula is this
// package's (AdapterV2Linear: scale · (linear(x) + bias)); its prompts' keys/values, as released in litgpt 0.5.13,
// are split from the fused qkv output with an outdated per-group view (see the golden interop_tiny/meta.json), so
// litgpt itself computes other logits from the same tensors until that split is fixed: the golden adapter_v2_tiny
// was cross-checked against litgpt with the split fixed (1.5e-7).

import (
	"fmt"
	"math"
	"strings"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/torchpth"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// litgptV2Linear maps this package's linears to litgpt's module paths within a block (q, k and v share qkv).
var litgptV2Linear = map[llama.Linear]string{
	llama.LinearQ: "attn.qkv", llama.LinearK: "attn.qkv", llama.LinearV: "attn.qkv", llama.LinearO: "attn.proj",
	llama.LinearGate: "mlp.fc_1", llama.LinearUp: "mlp.fc_2", llama.LinearDown: "mlp.proj",
}

// litgptQKVOffset is where linear l's rows start within litgpt's fused q;k;v output.
func litgptQKVOffset(m llama.Config, l llama.Linear) int {
	switch l {
	case llama.LinearK:
		return m.OutDim(llama.LinearQ)
	case llama.LinearV:
		return m.OutDim(llama.LinearQ) + m.OutDim(llama.LinearK)
	}
	return 0
}

// litgptV2Name returns litgpt's name and the row range of the HF-named V2 tensor r (see V2Terms.hfRefs).
func litgptV2Name(m llama.Config, r v2Ref) (name string, offset, width int) {
	width = r.rowWidth()
	if r.layer < 0 {
		switch {
		case r.name == "model.norm.weight":
			return "transformer.ln_f.weight", 0, width
		default: // lm_head.adapter_bias / adapter_scale: the same name in litgpt
			return r.name, 0, width
		}
	}
	block := fmt.Sprintf("transformer.h.%d.", r.layer)
	rest := strings.TrimPrefix(r.name, fmt.Sprintf("model.layers.%d.", r.layer))
	switch rest {
	case "input_layernorm.weight":
		return block + "norm_1.weight", 0, width
	case "post_attention_layernorm.weight":
		return block + "norm_2.weight", 0, width
	}
	for _, l := range llama.LayerLinears {
		for _, what := range []string{"adapter_bias", "adapter_scale"} {
			if rest == l.String()+"."+what {
				return block + litgptV2Linear[l] + "." + what, litgptQKVOffset(m, l), width
			}
		}
	}
	return "", 0, 0 // not reached: hfRefs names only the tensors above
}

func litgptV2PromptName(layer int) string {
	return fmt.Sprintf("transformer.h.%d.attn.adapter_wte.weight", layer)
}
func litgptV2GateName(layer int) string {
	return fmt.Sprintf("transformer.h.%d.attn.gating_factor", layer)
}

// ImportLitGPTV2 reads a litgpt adapter_v2 checkpoint (lit_model.pth.adapter_v2) into a new V2 adapter with
// head-tanh gates in store, which must be the model m's store (V2 norms start from its weights before being
// overwritten). L and K come from the adapted layers' adapter_wte tensors, which must be the topmost L layers.
func ImportLitGPTV2(path string, store *model.Store, m llama.Config) (*Adapter, error) {
	f, err := torchpth.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, ok := f.Info("model." + litgptV2GateName(m.NumLayers-1)); ok {
		f.TrimPrefix("model.") // the {"model": state dict} that litgpt's finetune script saves
	}
	first := -1
	var K int
	for i := 0; i < m.NumLayers; i++ {
		info, ok := f.Info(litgptV2PromptName(i))
		if ok && first < 0 {
			first = i
			if len(info.Shape) != 2 || info.Shape[1] != m.Dim {
				return nil, fmt.Errorf("adapter %s: %s has shape %v, want [K, C=%d]", path, litgptV2PromptName(i), info.Shape, m.Dim)
			}
			K = info.Shape[0]
		}
		if first >= 0 && !ok {
			return nil, fmt.Errorf("adapter %s: adapted layers must be the topmost ones; layer %d has prompts but layer %d has none", path, first, i)
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("adapter %s: no transformer.h.*.attn.adapter_wte.weight for a %d-layer model: not a litgpt adapter checkpoint of this model", path, m.NumLayers)
	}
	a, err := New(store, Config{Layers: m.NumLayers - first, PromptLen: K, Gate: GateHeadTanh, Version: V2}, m)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", path, err)
	}
	L, C, H := a.Config.Layers, m.Dim, m.NumHeads
	prompts := make([]float32, 0, L*K*C)
	gates := make([]float32, 0, L*H)
	for j := 0; j < L; j++ {
		p, shape, err := f.ReadFloat32(litgptV2PromptName(first + j))
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", path, err)
		}
		if len(shape) != 2 || shape[0] != K || shape[1] != C {
			return nil, fmt.Errorf("adapter %s: %s has shape %v, want [%d, %d]", path, litgptV2PromptName(first+j), shape, K, C)
		}
		prompts = append(prompts, p...)
		g, shape, err := f.ReadFloat32(litgptV2GateName(first + j))
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", path, err)
		}
		if len(g) != H {
			return nil, fmt.Errorf("adapter %s: %s has shape %v, want %d per-head gates ([1, 1, %d, 1])", path, litgptV2GateName(first+j), shape, H, H)
		}
		for h, x := range g {
			if !(math.Abs(float64(x)) < 1) {
				return nil, fmt.Errorf("adapter %s: %s head %d is %g: a litgpt gate (used without tanh) outside (-1, 1) has no head-tanh equivalent", path, litgptV2GateName(first+j), h, x)
			}
			gates = append(gates, float32(math.Atanh(float64(x))))
		}
	}
	if err := a.Prompts.SetValue(tensors.FromFlatDataAndDimensions(prompts, L, K, C)); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", path, err)
	}
	if err := a.Gates.SetValue(tensors.FromFlatDataAndDimensions(gates, L, H)); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", path, err)
	}
	// The V2 terms, read through their HF names (setV2FromHF checks each one's length).
	names := map[string]v2Ref{}
	for _, r := range a.V2.hfRefs(m.NumLayers) {
		names[r.name] = r
	}
	read := func(hfName string) ([]float32, []int, error) {
		lname, off, width := litgptV2Name(m, names[hfName])
		vals, shape, err := f.ReadFloat32(lname)
		if err != nil {
			return nil, nil, err
		}
		want := width
		if strings.HasSuffix(lname, "attn.qkv.adapter_bias") || strings.HasSuffix(lname, "attn.qkv.adapter_scale") {
			want = m.OutDim(llama.LinearQ) + 2*m.OutDim(llama.LinearK)
		}
		if len(shape) != 1 || shape[0] != want {
			return nil, nil, fmt.Errorf("%s has shape %v, want [%d]", lname, shape, want)
		}
		return vals[off : off+width], []int{width}, nil
	}
	if err := a.setV2FromHF(path, read); err != nil {
		return nil, err
	}
	return a, nil
}

// ExportLitGPTV2 writes a V2 adapter with head-tanh gates as a litgpt adapter_v2 state dict (float32, the flat
// state dict litgpt's loaders accept beside the {"model": ...} form its finetune script saves).
func (a *Adapter) ExportLitGPTV2(path string) error {
	if a.V2 == nil {
		return fmt.Errorf("adapter: litgpt's adapter_v2 layout needs a V2 adapter; this one is v1")
	}
	if a.Config.Gate != GateHeadTanh {
		return fmt.Errorf("adapter: litgpt's adapter_v2 has per-head gates; this adapter's gates are %q", a.Config.Gate)
	}
	if a.Projection != nil || a.Config.Fusion != "" {
		return fmt.Errorf("adapter: litgpt's adapter_v2 layout has no visual projection or early fusion")
	}
	m := a.Model
	prompts, err := variableValues(a.Prompts)
	if err != nil {
		return fmt.Errorf("adapter: exporting %s: %w", path, err)
	}
	gates, err := variableValues(a.Gates)
	if err != nil {
		return fmt.Errorf("adapter: exporting %s: %w", path, err)
	}
	L, K, C, H := a.Config.Layers, a.Config.PromptLen, m.Dim, m.NumHeads
	first := a.Config.FirstLayer(m)
	var ts []torchpth.Tensor
	for j := 0; j < L; j++ {
		gf := make([]float32, H)
		for h := range gf {
			gf[h] = float32(math.Tanh(float64(gates[j*H+h])))
		}
		ts = append(ts, torchpth.Float32Tensor(litgptV2PromptName(first+j), []int{K, C}, prompts[j*K*C:(j+1)*K*C], safetensors.F32),
			torchpth.Float32Tensor(litgptV2GateName(first+j), []int{1, 1, H, 1}, gf, safetensors.F32))
	}
	hfNames, vals, err := a.v2HF()
	if err != nil {
		return fmt.Errorf("adapter: exporting %s: %w", path, err)
	}
	refs := a.V2.hfRefs(m.NumLayers)
	// Gather each litgpt tensor (q, k and v fill one qkv tensor each for bias and scale) in first-seen order.
	var order []string
	full := map[string][]float32{}
	for i, r := range refs {
		lname, off, width := litgptV2Name(m, r)
		buf, ok := full[lname]
		if !ok {
			n := width
			if strings.Contains(lname, "attn.qkv.") {
				n = m.OutDim(llama.LinearQ) + 2*m.OutDim(llama.LinearK)
			}
			buf = make([]float32, n)
			full[lname] = buf
			order = append(order, lname)
		}
		if hfNames[i] != r.name {
			return fmt.Errorf("adapter: exporting %s: internal order mismatch at %s", path, r.name)
		}
		copy(buf[off:off+width], vals[i])
	}
	for _, lname := range order {
		ts = append(ts, torchpth.Float32Tensor(lname, []int{len(full[lname])}, full[lname], safetensors.F32))
	}
	return torchpth.Write(path, ts)
}
