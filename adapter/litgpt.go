package adapter

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/torchpth"
)

// litgpt's adapter checkpoint (lit_model.pth.adapter, what its save_adapter_checkpoint writes, litgpt 0.5.13): a
// torch pickle {"model": {...}} holding, for each adapted layer i ≥ N−L (adapter_start_layer), the prompts
// transformer.h.{i}.attn.adapter_wte.weight [K, C] and the gate transformer.h.{i}.attn.gating_factor [1, 1, H, 1],
// one per head used as is (the head formula).
//
// litgpt 0.5.13's own adapter forward does not compute this formula from the file: it takes the prompts' keys and
// values from its fused qkv projection with the older interleaved per-group split while its base attention uses
// the [Q; K; V] layout (0.076 max logit error on llama_tiny where the adapter's whole effect is 0.080; 1.8e-7 with
// the split following the base layout). The file itself transfers exactly.
const litgptWrap = "model"

var litgptKey = regexp.MustCompile(`^transformer\.h\.(\d+)\.attn\.(adapter_wte\.weight|gating_factor)$`)

func litgptName(layer int, what string) string {
	return fmt.Sprintf("transformer.h.%d.attn.%s", layer, what)
}

// readLitGPT reads litgpt's adapter checkpoint (nested under "model" or a bare state dict). N is the top adapted
// layer + 1.
func readLitGPT(path string) (*Weights, error) {
	f, err := torchpth.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := f.Names()
	if len(names) > 0 && strings.HasPrefix(names[0], litgptWrap+".") {
		f.TrimPrefix(litgptWrap + ".")
		names = f.Names()
	}
	found := map[int][2]string{}
	for _, n := range names {
		mm := litgptKey.FindStringSubmatch(n)
		if mm == nil {
			return nil, fmt.Errorf("adapter %s: tensor %q is not a LLaMA-Adapter v1 prompt or gate (transformer.h.{i}.attn.adapter_wte.weight / gating_factor)", path, n)
		}
		i, _ := strconv.Atoi(mm[1])
		p := found[i]
		if mm[2] == "gating_factor" {
			p[1] = n
		} else {
			p[0] = n
		}
		found[i] = p
	}
	var layers []int
	for i := range found {
		layers = append(layers, i)
	}
	sort.Ints(layers)
	L := len(layers)
	if L == 0 {
		return nil, fmt.Errorf("adapter %s: no transformer.h.{i}.attn.adapter_wte.weight tensors", path)
	}
	if err := topmost(path, "transformer.h.{i}.attn.adapter_wte.weight", layers); err != nil {
		return nil, err
	}
	w := &Weights{NumLayers: layers[L-1] + 1, Source: path,
		origin: map[string]string{"layers": "the adapted layers transformer.h.{i}.attn.*"}}
	K := 0
	for _, i := range layers {
		pn, gn := found[i][0], found[i][1]
		if pn == "" || gn == "" {
			return nil, fmt.Errorf("adapter %s: layer %d needs both %s and %s", path, i, litgptName(i, "adapter_wte.weight"), litgptName(i, "gating_factor"))
		}
		p, shape, err := f.ReadFloat32(pn)
		if err != nil {
			return nil, err
		}
		if K == 0 && len(shape) == 2 {
			K, w.Dim, w.origin["dim"] = shape[0], shape[1], pn
		}
		if len(shape) != 2 || shape[0] != K || shape[1] != w.Dim {
			return nil, fmt.Errorf("adapter %s: tensor %q has shape %v; want [K, C] with one K and C for every layer", path, pn, shape)
		}
		g, gshape, err := f.ReadFloat32(gn)
		if err != nil {
			return nil, err
		}
		if w.NumHeads == 0 && len(gshape) == 4 {
			w.NumHeads, w.origin["heads"] = gshape[2], gn
		}
		if len(gshape) != 4 || gshape[0] != 1 || gshape[1] != 1 || gshape[2] != w.NumHeads || gshape[3] != 1 {
			return nil, fmt.Errorf("adapter %s: tensor %q has shape %v; want [1, 1, H, 1] with one H for every layer", path, gn, gshape)
		}
		w.Prompts = append(w.Prompts, p...)
		w.Gates = append(w.Gates, g...)
	}
	w.Config = Config{Layers: L, PromptLen: K, Gate: GateHead}.Defaults()
	return w, nil
}

// writeLitGPT writes litgpt's adapter checkpoint: {"model": {transformer.h.{i}.attn.adapter_wte.weight,
// transformer.h.{i}.attn.gating_factor, ...}} for i = N−L..N−1, float32.
func writeLitGPT(w *Weights, path string) error {
	L, K, C, H := w.Config.Layers, w.Config.PromptLen, w.Dim, w.NumHeads
	var ts []torchpth.Tensor
	for j := 0; j < L; j++ {
		i := w.NumLayers - L + j
		ts = append(ts,
			torchpth.Float32Tensor(litgptName(i, "adapter_wte.weight"), []int{K, C}, w.Prompts[j*K*C:(j+1)*K*C], safetensors.F32),
			torchpth.Float32Tensor(litgptName(i, "gating_factor"), []int{1, 1, H, 1}, w.Gates[j*H:(j+1)*H], safetensors.F32))
	}
	return torchpth.WriteWrapped(path, litgptWrap, ts)
}
