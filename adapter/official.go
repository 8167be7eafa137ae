package adapter

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/torchpth"
	"github.com/gomlx/gomlx/ml/model"
)

// Official LLaMA-Adapter v1 release layout (the .pth the authors published for LLaMA-7B): the prompts of all L
// layers stacked as one embedding table, and one gate per head for each adapted layer.
const (
	officialQuery = "adapter_query.weight" // [L·K, C]: rows j·K..(j+1)·K are the prompts of layer N−L+j
)

var officialGate = regexp.MustCompile(`^layers\.(\d+)\.attention\.gate$`) // [1, H, 1, 1], used as tanh(gate)

func officialGateName(layer int) string { return fmt.Sprintf("layers.%d.attention.gate", layer) }

// ImportOfficial reads an official v1 adapter .pth into new variables of store. L comes from the gated layers
// (they must be the topmost L layers of m), K from adapter_query's rows / L; the gates are per head (head-tanh).
// A mismatch with the model (C, head count, depth) is an error naming the file. Open reads every format.
func ImportOfficial(path string, store *model.Store, m llama.Config) (*Adapter, error) {
	w, err := readOfficial(path)
	if err != nil {
		return nil, err
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	return w.NewAdapter(store, m)
}

// readOfficial reads the official v1 layout. N is the top gated layer + 1 (the gated layers are the topmost L).
func readOfficial(path string) (*Weights, error) {
	f, err := torchpth.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var layers []int
	for _, n := range f.Names() {
		if mm := officialGate.FindStringSubmatch(n); mm != nil {
			i, _ := strconv.Atoi(mm[1])
			layers = append(layers, i)
		}
	}
	sort.Ints(layers)
	if len(layers) == 0 {
		return nil, fmt.Errorf("adapter %s: no layers.{i}.attention.gate tensors: not a LLaMA-Adapter v1 checkpoint", path)
	}
	L := len(layers)
	N := layers[L-1] + 1
	if err := topmost(path, "layers.{i}.attention.gate", layers); err != nil {
		return nil, err
	}
	q, ok := f.Info(officialQuery)
	if !ok {
		return nil, fmt.Errorf("adapter %s: missing %s", path, officialQuery)
	}
	if len(q.Shape) != 2 || q.Shape[0]%L != 0 || q.Shape[0] == 0 {
		return nil, fmt.Errorf("adapter %s: %s has shape %v; %d adapted layers need [L·K, C] with L=%d", path, officialQuery, q.Shape, L, L)
	}
	K, C := q.Shape[0]/L, q.Shape[1]
	prompts, _, err := f.ReadFloat32(officialQuery)
	if err != nil {
		return nil, err
	}
	w := &Weights{Config: Config{Layers: L, PromptLen: K, Gate: GateHeadTanh}.Defaults(), NumLayers: N, Dim: C, Prompts: prompts, Source: path,
		origin: map[string]string{"dim": officialQuery, "layers": "the gated layers layers.{i}.attention.gate"}}
	for _, i := range layers {
		name := officialGateName(i)
		g, shape, err := f.ReadFloat32(name)
		if err != nil {
			return nil, err
		}
		if len(shape) != 4 || shape[0] != 1 || shape[2] != 1 || shape[3] != 1 || (w.NumHeads != 0 && shape[1] != w.NumHeads) {
			return nil, fmt.Errorf("adapter %s: %s has shape %v; want [1, H, 1, 1] with the same H in every layer", path, name, shape)
		}
		if w.NumHeads == 0 {
			w.NumHeads, w.origin["heads"] = shape[1], name
		}
		w.Gates = append(w.Gates, g...)
	}
	return w, nil
}

// topmost checks that the adapted layers (sorted) are consecutive, as the topmost L of the model are.
func topmost(path, what string, layers []int) error {
	for j := 1; j < len(layers); j++ {
		if layers[j] != layers[j-1]+1 {
			return fmt.Errorf("adapter %s: the adapted layers of %s are %v, not consecutive: an adapter here adapts the topmost L layers of its model", path, what, layers)
		}
	}
	return nil
}

// ExportOfficial writes the adapter in the official v1 layout (float32). Only per-head tanh gates and text-only
// adapters have an official counterpart.
func (a *Adapter) ExportOfficial(path string) error {
	if a.V2 != nil || a.Config.Fusion != "" {
		return fmt.Errorf("adapter: the official v1 layout has no V2 terms or early fusion")
	}
	w, err := a.Weights()
	if err != nil {
		return err
	}
	return w.Write(path, FormatOfficial, WriteOptions{})
}

// writeOfficial writes the official layout: adapter_query.weight [L·K, C] and layers.{i}.attention.gate
// [1, H, 1, 1] for i = N−L..N−1.
func writeOfficial(w *Weights, path string) error {
	L, K, C, H := w.Config.Layers, w.Config.PromptLen, w.Dim, w.NumHeads
	ts := []torchpth.Tensor{torchpth.Float32Tensor(officialQuery, []int{L * K, C}, w.Prompts, safetensors.F32)}
	for j := 0; j < L; j++ {
		ts = append(ts, torchpth.Float32Tensor(officialGateName(w.NumLayers-L+j), []int{1, H, 1, 1}, w.Gates[j*H:(j+1)*H], safetensors.F32))
	}
	return torchpth.Write(path, ts)
}
