package adapter

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/torchpth"
	"github.com/gomlx/gomlx/core/tensors"
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
// A mismatch with the model (C, head count, depth) is an error naming the file.
func ImportOfficial(path string, store *model.Store, m llama.Config) (*Adapter, error) {
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
	for j, i := range layers {
		if i != m.NumLayers-L+j {
			return nil, fmt.Errorf("adapter %s: gated layers %v are not the topmost %d of a %d-layer model", path, layers, L, m.NumLayers)
		}
	}
	q, ok := f.Info(officialQuery)
	if !ok {
		return nil, fmt.Errorf("adapter %s: missing %s", path, officialQuery)
	}
	if len(q.Shape) != 2 || q.Shape[1] != m.Dim || q.Shape[0]%L != 0 {
		return nil, fmt.Errorf("adapter %s: %s has shape %v; a model with C=%d and %d adapted layers needs [L·K, %d]",
			path, officialQuery, q.Shape, m.Dim, L, m.Dim)
	}
	K := q.Shape[0] / L
	a, err := New(store, Config{Layers: L, PromptLen: K, Gate: GateHeadTanh}, m)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", path, err)
	}
	prompts, _, err := f.ReadFloat32(officialQuery)
	if err != nil {
		return nil, err
	}
	gates := make([]float32, 0, L*m.NumHeads)
	for _, i := range layers {
		g, shape, err := f.ReadFloat32(officialGateName(i))
		if err != nil {
			return nil, err
		}
		if len(g) != m.NumHeads {
			return nil, fmt.Errorf("adapter %s: %s has shape %v; the model has %d heads ([1, %d, 1, 1])", path, officialGateName(i), shape, m.NumHeads, m.NumHeads)
		}
		gates = append(gates, g...)
	}
	if err := a.Prompts.SetValue(tensors.FromFlatDataAndDimensions(prompts, L, K, m.Dim)); err != nil {
		return nil, err
	}
	if err := a.Gates.SetValue(tensors.FromFlatDataAndDimensions(gates, L, m.NumHeads)); err != nil {
		return nil, err
	}
	return a, nil
}

// ExportOfficial writes the adapter in the official v1 layout (float32). Only per-head tanh gates and text-only
// adapters have an official counterpart.
func (a *Adapter) ExportOfficial(path string) error {
	if a.Config.Gate != GateHeadTanh {
		return fmt.Errorf("adapter: the official layout has per-head tanh gates; this adapter's gates are %q", a.Config.Gate)
	}
	if a.Projection != nil {
		return fmt.Errorf("adapter: the official v1 layout has no visual projection")
	}
	if a.V2 != nil || a.Config.Fusion != "" {
		return fmt.Errorf("adapter: the official v1 layout has no V2 terms or early fusion")
	}
	prompts, err := tensors.CopyFlatData[float32](a.Prompts.MustValue())
	if err != nil {
		return err
	}
	gates, err := tensors.CopyFlatData[float32](a.Gates.MustValue())
	if err != nil {
		return err
	}
	L, K, C, H := a.Config.Layers, a.Config.PromptLen, a.Model.Dim, a.Model.NumHeads
	ts := []torchpth.Tensor{torchpth.Float32Tensor(officialQuery, []int{L * K, C}, prompts, safetensors.F32)}
	for j := 0; j < L; j++ {
		ts = append(ts, torchpth.Float32Tensor(officialGateName(a.Config.FirstLayer(a.Model)+j), []int{1, H, 1, 1}, gates[j*H:(j+1)*H], safetensors.F32))
	}
	return torchpth.Write(path, ts)
}
