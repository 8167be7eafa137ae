package pipeline

import (
	"fmt"
	"io"

	"github.com/adapterlab/llama-adapter/clip"
	"github.com/gomlx/compute"
)

// ImageFeaturesOf computes the multi-scale features of a few images exactly as a run with cfg computes those of
// its problems: cfg's vision tower (-clip; a random-weight one seeded by -seed), its layers (-clip-layers) and the
// tower's own preprocessing, without the feature cache. It returns one [scales·dim] slice per image.
func ImageFeaturesOf(cfg Config, b compute.Backend, images []clip.ImageSource, out io.Writer) (feats [][]float32, scales, dim int, err error) {
	if cfg.Vision.CLIP == "" {
		return nil, 0, 0, fmt.Errorf("image features need a vision tower (-clip)")
	}
	m, err := openVisionTower(cfg, out)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("vision tower %s: %w", cfg.Vision.CLIP, err)
	}
	enc, err := m.NewEncoder(b, clip.FeatureOptions{Layers: cfg.Vision.Layers})
	if err != nil {
		return nil, 0, 0, err
	}
	x, err := clip.NewExtractor(enc, "")
	if err != nil {
		return nil, 0, 0, err
	}
	if feats, err = x.Features(images); err != nil {
		return nil, 0, 0, err
	}
	scales = len(enc.Options.Layers)
	fmt.Fprintf(out, "vision tower: %s, layers %v, %s\n", visionName(cfg, m), enc.Options.Layers, x.Preprocess)
	return feats, scales, enc.Dim() / scales, nil
}
