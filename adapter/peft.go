package adapter

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/adapterlab/llama-adapter/models/safetensors"
)

// peft's AdaptionPrompt layout (what PeftModel.save_pretrained writes, peft 0.22): a folder with
// adapter_config.json (peft_type ADAPTION_PROMPT, adapter_len K, adapter_layers L, target_modules "self_attn")
// and adapter_model.safetensors holding, for each of the topmost L layers i, the prompts
// base_model.model.model.layers.{i}.self_attn.adaption_prompt [1, K, C] and the gate .adaption_gate [1], used as
// is (the layer formula).
const (
	peftType         = "ADAPTION_PROMPT"
	peftTargetModule = "self_attn"
	peftTaskType     = "CAUSAL_LM"
	peftKeyPrefix    = "base_model.model."
	// peftVersion is the peft release whose save_pretrained output this writer reproduces (the golden folder's).
	peftVersion = "0.22.0"
)

// peftKey matches the tensors with or without the PeftModel prefix (peft strips nothing on save, but a state dict
// taken from the inner model lacks it).
var peftKey = regexp.MustCompile(`^(?:base_model\.model\.)?model\.layers\.(\d+)\.self_attn\.adaption_(prompt|gate)$`)

func peftName(layer int, what string) string {
	return fmt.Sprintf("%smodel.layers.%d.self_attn.adaption_%s", peftKeyPrefix, layer, what)
}

// peftConfig is the part of adapter_config.json the reader uses.
type peftConfig struct {
	PeftType      string `json:"peft_type"`
	AdapterLen    int    `json:"adapter_len"`
	AdapterLayers int    `json:"adapter_layers"`
	TargetModules any    `json:"target_modules"`
}

// readPeft reads a peft AdaptionPrompt folder. N is the top adapted layer + 1; H is unknown (0): peft's gates are
// one per layer.
func readPeft(dir string) (*Weights, error) {
	cfgPath := filepath.Join(dir, peftConfigFile)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	var pc peftConfig
	if err := json.Unmarshal(raw, &pc); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", cfgPath, err)
	}
	if pc.PeftType != peftType {
		return nil, fmt.Errorf("adapter %s: peft_type %q; only %s (LLaMA-Adapter's adaption prompts) is read", cfgPath, pc.PeftType, peftType)
	}
	if tm, ok := pc.TargetModules.(string); pc.TargetModules != nil && (!ok || tm != peftTargetModule) {
		return nil, fmt.Errorf("adapter %s: target_modules %v; the adaption prompt of a LLaMA model sits in %q", cfgPath, pc.TargetModules, peftTargetModule)
	}
	path := filepath.Join(dir, peftWeightsFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	defer f.Close()
	found := map[int]map[string]bool{}
	for _, n := range f.Names() {
		mm := peftKey.FindStringSubmatch(n)
		if mm == nil {
			return nil, fmt.Errorf("adapter %s: tensor %q is not an adaption prompt or gate (model.layers.{i}.self_attn.adaption_prompt/gate)", path, n)
		}
		i, _ := strconv.Atoi(mm[1])
		if found[i] == nil {
			found[i] = map[string]bool{}
		}
		found[i][n] = true
	}
	var layers []int
	for i := range found {
		layers = append(layers, i)
	}
	sort.Ints(layers)
	L, K := len(layers), pc.AdapterLen
	if L == 0 {
		return nil, fmt.Errorf("adapter %s: no adaption prompts", path)
	}
	if L != pc.AdapterLayers {
		return nil, fmt.Errorf("adapter %s: prompts for %d layers %v, but %s says adapter_layers=%d", path, L, layers, cfgPath, pc.AdapterLayers)
	}
	if err := topmost(path, "model.layers.{i}.self_attn.adaption_prompt", layers); err != nil {
		return nil, err
	}
	w := &Weights{Config: Config{Layers: L, PromptLen: K, Gate: GateLayer}.Defaults(), NumLayers: layers[L-1] + 1, Source: dir,
		origin: map[string]string{"layers": "the adapted layers model.layers.{i}.self_attn.adaption_prompt"}}
	for _, i := range layers {
		names := map[string]string{}
		for n := range found[i] {
			names[peftKey.FindStringSubmatch(n)[2]] = n
		}
		pn, gn := names["prompt"], names["gate"]
		if pn == "" || gn == "" || len(found[i]) != 2 {
			return nil, fmt.Errorf("adapter %s: layer %d needs exactly one adaption_prompt and one adaption_gate; it has %d tensors", path, i, len(found[i]))
		}
		p, shape, err := f.ReadFloat32(pn)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", path, err)
		}
		if w.Dim == 0 && len(shape) == 3 {
			w.Dim, w.origin["dim"] = shape[2], pn
		}
		if len(shape) != 3 || shape[0] != 1 || shape[1] != K || shape[2] != w.Dim {
			return nil, fmt.Errorf("adapter %s: tensor %q has shape %v; adapter_len=%d needs [1, %d, C] with one C for every layer", path, pn, shape, K, K)
		}
		g, gshape, err := f.ReadFloat32(gn)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", path, err)
		}
		if len(g) != 1 {
			return nil, fmt.Errorf("adapter %s: tensor %q has shape %v; peft's gate is one value per layer ([1])", path, gn, gshape)
		}
		w.Prompts = append(w.Prompts, p...)
		w.Gates = append(w.Gates, g...)
	}
	return w, nil
}

// writePeft writes a peft AdaptionPrompt folder: adapter_config.json with the fields save_pretrained writes and
// adapter_model.safetensors (metadata format "pt", as torch's safetensors writer sets it).
func writePeft(w *Weights, dir, baseModel string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	var base any // null, as peft writes it when the base model has no name
	if baseModel != "" {
		base = baseModel
	}
	cfg := map[string]any{
		"adapter_layers":          w.Config.Layers,
		"adapter_len":             w.Config.PromptLen,
		"auto_mapping":            nil,
		"base_model_name_or_path": base,
		"inference_mode":          true,
		"peft_type":               peftType,
		"peft_version":            peftVersion,
		"revision":                nil,
		"target_modules":          peftTargetModule,
		"task_type":               peftTaskType,
	}
	raw, err := json.MarshalIndent(cfg, "", "  ") // sorted keys, two-space indent: as peft writes it
	if err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	L, K, C := w.Config.Layers, w.Config.PromptLen, w.Dim
	var ts []safetensors.Tensor
	for j := 0; j < L; j++ {
		i := w.NumLayers - L + j
		ts = append(ts,
			safetensors.Float32Tensor(peftName(i, "gate"), []int{1}, w.Gates[j:j+1], safetensors.F32),
			safetensors.Float32Tensor(peftName(i, "prompt"), []int{1, K, C}, w.Prompts[j*K*C:(j+1)*K*C], safetensors.F32))
	}
	if err := safetensors.Write(filepath.Join(dir, peftWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, peftConfigFile), raw, 0o644); err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	return nil
}
