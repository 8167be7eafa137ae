package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/clip"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// adapterOptions are the flags of generation with a trained adapter.
type adapterOptions struct {
	path, image, clip, clipLayers string
	install                       bool // -install: a pinned vision tower may be installed
	// runDir is path when it is a run folder; vision holds the vision tower's settings (the run's, flags over them).
	runDir string
	vision pipeline.Config
}

func (o *adapterOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.path, "adapter", "", "trained adapter: a run folder (its recorded model, tokenizer and vision tower become the defaults), the toolkit's adapter.safetensors, or an official LLaMA-Adapter v1 .pth")
	fs.StringVar(&o.image, "image", "", "image for a multimodal adapter (PNG/JPEG); without it a multimodal adapter sees zero features, as the evaluation's problems without an image")
	fs.StringVar(&o.clip, "clip", "", "vision tower for -image: dinov2-s14, a DINOv2 .onnx, a Hugging Face CLIP folder or random (default: the run folder's)")
	fs.StringVar(&o.clipLayers, "clip-layers", "", "vision layers of the multi-scale features, e.g. 4,8,12 (default: the run folder's, else 3 evenly spaced)")
}

// runFlags are the flags of this command whose settings a run folder records under the same name.
var runFlags = []string{"model", "tokenizer", "dtype", "clip", "clip-layers"}

// runDefaults applies a run folder's recorded model, tokenizer, dtype and vision tower wherever the flag was not
// given (pipeline.MergeRunSettings), saying which given flags contradict the recording.
func (o *adapterOptions) runDefaults(fs *flag.FlagSet, modelPath, tokPath *string, dtype *device.DType, stderr io.Writer) error {
	var layers []int
	if o.clipLayers != "" {
		var err error
		if layers, err = clip.ParseLayers(o.clipLayers); err != nil {
			return fmt.Errorf("-clip-layers: %w", err)
		}
	}
	o.vision = pipeline.Config{Vision: pipeline.VisionConfig{CLIP: o.clip, Layers: layers}, Runtime: pipeline.Runtime{Install: o.install}}
	if o.path == "" {
		if o.image != "" {
			return fmt.Errorf("-image needs a multimodal adapter (-adapter)")
		}
		return nil
	}
	if !pipeline.IsRunFolder(o.path) {
		return nil
	}
	rec, err := pipeline.ReadConfig(o.path)
	if err != nil {
		return fmt.Errorf("-adapter %s: %w", o.path, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		for _, n := range runFlags {
			given[n] = given[n] || f.Name == n
		}
	})
	flags := o.vision
	flags.Model = pipeline.ModelConfig{Path: *modelPath, Tokenizer: *tokPath, DType: *dtype}
	merged, conflicts := pipeline.MergeRunSettings(rec, flags, given)
	for _, c := range conflicts {
		fmt.Fprintf(stderr, "run folder %s: %s\n", o.path, c)
	}
	*modelPath, *tokPath, *dtype = merged.Model.Path, merged.Model.Tokenizer, merged.Model.DType
	if given["model"] && !given["tokenizer"] {
		*tokPath = "" // another model: its own tokenizer (the default), not the run's
	}
	o.runDir, o.vision = o.path, merged
	o.vision.Install = o.install
	return nil
}

// loadedAdapter is an adapter ready for generation: the step graphs' extension and its extra inputs (the prompts'
// keys/values, computed once).
type loadedAdapter struct {
	a         *adapter.Adapter
	extension func(g *Graph, extra []*Node) llama.AttentionExtension
	kv        []*tensors.Tensor
}

// open loads the adapter for model m (loaded from modelPath), checks it was made for this model, computes its
// image features if any and its prompts' keys/values. nil when no -adapter was given.
func (o *adapterOptions) open(m *llama.Model, modelPath string, b compute.Backend, stderr io.Writer) (*loadedAdapter, error) {
	if o.path == "" {
		return nil, nil
	}
	if o.runDir != "" {
		if err := pipeline.CheckRecordedModel(o.runDir, modelPath); err != nil {
			return nil, err
		}
	}
	a, err := pipeline.LoadAdapter(o.path, m) // every adapter format the toolkit reads, in one place
	if err != nil {
		return nil, fmt.Errorf("-adapter %s: %w", o.path, err)
	}
	kind := "text"
	if a.Config.Visual != nil {
		kind = fmt.Sprintf("multimodal, %d×%d image features", a.Config.Visual.Scales, a.Config.Visual.FeatureDim)
	}
	fmt.Fprintf(stderr, "adapter: %s (L=%d from layer %d, K=%d, gate %s, %s)\n", o.path, a.Config.Layers,
		a.Config.FirstLayer(m.Config), a.Config.PromptLen, a.Config.Gate, kind)
	features, err := o.features(a, b, stderr)
	if err != nil {
		return nil, err
	}
	pc, err := adapter.NewPromptCache(a, m, b)
	if err != nil {
		return nil, fmt.Errorf("-adapter %s: %w", o.path, err)
	}
	kv, err := pc.Compute(features)
	if err != nil {
		return nil, fmt.Errorf("-adapter %s: %w", o.path, err)
	}
	return &loadedAdapter{a: a, extension: pc.Extension, kv: kv}, nil
}

// features returns the image features [1, M, D] a multimodal adapter sees (-image's, or zeros), nil for a text one.
func (o *adapterOptions) features(a *adapter.Adapter, b compute.Backend, stderr io.Writer) (*tensors.Tensor, error) {
	vc := a.Config.Visual
	if vc == nil {
		if o.image != "" {
			return nil, fmt.Errorf("-image: adapter %s has no visual projection (a text-only adapter)", o.path)
		}
		return nil, nil
	}
	if o.image == "" {
		fmt.Fprintln(stderr, "no -image: the multimodal adapter sees zero image features (as problems without an image)")
		return tensors.FromFlatDataAndDimensions(make([]float32, vc.Scales*vc.FeatureDim), 1, vc.Scales, vc.FeatureDim), nil
	}
	if o.vision.Vision.CLIP == "" {
		return nil, fmt.Errorf("-image: no vision tower: give -clip (the run folder records it; a bare adapter file does not)")
	}
	feats, scales, dim, err := pipeline.ImageFeaturesOf(o.vision, b, []clip.ImageSource{{Name: o.image, Path: o.image}}, stderr)
	if err != nil {
		return nil, fmt.Errorf("-image %s: %w", o.image, err)
	}
	if scales != vc.Scales || dim != vc.FeatureDim {
		return nil, fmt.Errorf("-image: the vision tower %s gives %d×%d features; adapter %s was trained on %d×%d (check -clip and -clip-layers)",
			o.vision.Vision.CLIP, scales, dim, o.path, vc.Scales, vc.FeatureDim)
	}
	return tensors.FromFlatDataAndDimensions(feats[0], 1, scales, dim), nil
}
