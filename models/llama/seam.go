package llama

import "fmt"

// LayerKV returns layer i's frozen key/value projections, the KVProjector an AttentionExtension receives inside
// Forward, for graph code that runs them outside a forward pass: an adapter computing its prompts' keys/values once
// per generation instead of at every decoding step. lin, when not nil, adapts the projections as inside Forward
// (LLaMA-Adapter V2's bias and scale on k/v).
func (m *Model) LayerKV(i int, lin LinearExtension) (KVProjector, error) {
	if i < 0 || i >= len(m.layers) {
		return KVProjector{}, fmt.Errorf("llama %s: layer %d outside 0..%d", m.Source, i, len(m.layers)-1)
	}
	return m.kvProjector(i, lin), nil
}
