package adapter

import (
	"fmt"

	"github.com/adapterlab/llama-adapter/models/llama"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// The image path of every graph that runs the adapter (training, each evaluation protocol, generation) is these two
// steps: FeatureTensor on the host, FeatureExtension in the graph. What the features are is the caller's choice:
// a counterfactual (another example's features, zeros) goes through the same two calls unchanged.

// FeatureTensor packs the image features of a batch of rows (rows·M·D values, row-major; M×D per row as the
// visual projection expects) into the tensor [rows, M, D] that FeatureExtension reads. It is nil, with no error,
// when features is empty (a text-only batch); an adapter without a visual projection, or a count that is not
// rows·M·D, is an error.
func (a *Adapter) FeatureTensor(features []float32, rows int) (*tensors.Tensor, error) {
	if len(features) == 0 {
		return nil, nil
	}
	vc := a.Config.Visual
	if vc == nil || a.Projection == nil {
		return nil, fmt.Errorf("adapter: %d image feature values but the adapter has no visual projection", len(features))
	}
	if rows < 1 || len(features) != rows*vc.Scales*vc.FeatureDim {
		return nil, fmt.Errorf("adapter: %d image feature values for %d rows; the visual projection wants %d×%d per row",
			len(features), rows, vc.Scales, vc.FeatureDim)
	}
	return tensors.FromFlatDataAndDimensions(features, rows, vc.Scales, vc.FeatureDim), nil
}

// FeatureExtension is the attention extension for one graph given the batch's image features [B, M, D] (nil: no
// image, the text-only adapter): the features go through the visual projection to the visual token added to every
// prompt (Extension).
func (a *Adapter) FeatureExtension(g *Graph, features *Node) llama.AttentionExtension {
	var visual *Node
	if features != nil && a.Projection != nil {
		visual = a.Projection.Token(features)
	}
	return a.Extension(g, visual)
}
