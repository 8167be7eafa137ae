package clip

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// writeFullCLIP rewrites clip_tiny as a full CLIPModel checkpoint: nested vision_config, a text tower to ignore,
// weights stored as dtype in two shards with an index.
func writeFullCLIP(t *testing.T, dtype string) string {
	t.Helper()
	src := assets.Require(t, assets.Golden("clip_tiny"))
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vision map[string]any
	raw, _ := os.ReadFile(filepath.Join(src, "config.json"))
	json.Unmarshal(raw, &vision)
	vision["projection_dim"] = 999 // the top-level value must win for a CLIPModel
	cfg := map[string]any{"architectures": []string{"CLIPModel"}, "model_type": "clip", "projection_dim": 32,
		"text_config": map[string]any{"hidden_size": 48, "num_hidden_layers": 2}, "vision_config": vision}
	dir := t.TempDir()
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	var shards [2][]safetensors.Tensor
	weightMap := map[string]string{}
	for i, name := range f.Names() {
		v, shape, err := f.ReadFloat32(name)
		if err != nil {
			t.Fatal(err)
		}
		s := i % 2
		shards[s] = append(shards[s], safetensors.Float32Tensor(name, shape, v, dtype))
		weightMap[name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[s]
	}
	shards[0] = append(shards[0], safetensors.Float32Tensor("text_model.embeddings.token_embedding.weight", []int{10, 48}, make([]float32, 480), dtype),
		safetensors.Float32Tensor("logit_scale", []int{}, []float32{2.6592}, safetensors.F32))
	weightMap["text_model.embeddings.token_embedding.weight"] = "model-00001-of-00002.safetensors"
	weightMap["logit_scale"] = "model-00001-of-00002.safetensors"
	for _, ts := range shards {
		if err := safetensors.Write(filepath.Join(dir, weightMap[ts[0].Name]), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	os.WriteFile(filepath.Join(dir, safetensors.IndexFile), idx, 0o644)
	return dir
}

func goldenOutputs(t *testing.T, m *Model) (got [][]float32, want [][]float32) {
	gpath := assets.Golden("clip_tiny", "golden.safetensors")
	px, shape := readGolden(t, gpath, "pixel_values")
	got = runAll(t, m, tensors.FromFlatDataAndDimensions(px, shape...))
	for _, n := range []string{"hidden_0", "hidden_1", "hidden_2", "hidden_3", "hidden_4", "last_hidden_state", "pooler_output", "image_embeds"} {
		w, _ := readGolden(t, gpath, n)
		want = append(want, w)
	}
	return got, want
}

func worst(got, want [][]float32) float64 {
	d := 0.0
	for i := range want {
		d = max(d, assets.MaxAbsDiff(got[i], want[i]))
	}
	return d
}

func TestLoadVariants(t *testing.T) {
	single := loadTiny(t)
	// Full CLIPModel, sharded, F32 on disk: same numbers, same identity as the single file.
	full, err := Load(writeFullCLIP(t, safetensors.F32), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if full.Config != single.Config || !full.HasProjection {
		t.Fatalf("full CLIPModel config %+v (projection %v), want %+v", full.Config, full.HasProjection, single.Config)
	}
	if full.WeightsHash != single.WeightsHash {
		t.Error("same vision weights in a sharded CLIPModel have another identity")
	}
	if d := worst(goldenOutputs(t, full)); d > 1e-4 {
		t.Errorf("sharded CLIPModel: max |diff| %g", d)
	}
	// F16 and BF16 on disk, computed in float32: the weights are rounded, nothing else changes.
	for _, c := range []struct {
		dtype string
		tol   float64
	}{{safetensors.F16, 4e-3}, {safetensors.BF16, 3e-2}} { // measured 1.9e-3 and 1.6e-2
		m, err := Load(writeFullCLIP(t, c.dtype), dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if m.WeightsHash == single.WeightsHash {
			t.Errorf("%s weights share the float32 identity", c.dtype)
		}
		d := worst(goldenOutputs(t, m))
		t.Logf("%s weights on disk: max |diff| to golden %.3g", c.dtype, d)
		if d > c.tol {
			t.Errorf("%s weights: max |diff| %g > %g", c.dtype, d, c.tol)
		}
	}
	// bfloat16 compute (weights and matmuls; norms and softmax in float32).
	bf, err := Load(assets.Golden("clip_tiny"), dtypes.BFloat16)
	if err != nil {
		t.Fatal(err)
	}
	d := worst(goldenOutputs(t, bf))
	t.Logf("bfloat16 compute: max |diff| to golden %.3g", d)
	if d > 5e-2 { // measured 2.2e-2
		t.Errorf("bfloat16 compute: max |diff| %g", d)
	}
	// A CLIPVisionModel checkpoint (no projection) loads; projecting is refused, the rest is unchanged.
	src := assets.Golden("clip_tiny")
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		if name == "visual_projection.weight" {
			continue
		}
		v, shape, _ := f.ReadFloat32(name)
		ts = append(ts, safetensors.Float32Tensor(name, shape, v, safetensors.F32))
	}
	dir := t.TempDir()
	cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	noProj, err := Load(dir, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if noProj.HasProjection {
		t.Error("projection reported without visual_projection.weight")
	}
	if _, err := noProj.NewEncoder(device.MustShared(), FeatureOptions{PostNorm: true, Project: true}); err == nil {
		t.Error("projection asked of a model without one")
	}
	// Broken checkpoints are refused with the offending tensor named.
	delete := ts[:0:0]
	for _, x := range ts {
		if x.Name != "vision_model.encoder.layers.3.mlp.fc2.bias" {
			delete = append(delete, x)
		}
	}
	safetensors.Write(filepath.Join(dir, "model.safetensors"), delete, nil)
	if _, err := Load(dir, dtypes.Float32); err == nil || !strings.Contains(err.Error(), "layers.3.mlp.fc2.bias") {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := LoadConfig(t.TempDir()); err == nil {
		t.Error("LoadConfig of an empty folder gave no error")
	}
}

func TestConfigs(t *testing.T) {
	l := ConfigViTL14()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	// openai/clip-vit-large-patch14: 303,179,776 vision parameters + 1024×768 projection; 257 tokens.
	if n := l.NumParams(); n != 303179776+1024*768 || l.SeqLen() != 257 {
		t.Errorf("ViT-L/14: %d params, %d tokens", n, l.SeqLen())
	}
	bad := l
	bad.HiddenAct = "relu"
	if bad.Validate() == nil {
		t.Error("relu accepted")
	}
	bad = l
	bad.ImageSize = 225
	if bad.Validate() == nil {
		t.Error("image size not a multiple of the patch accepted")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(`{"crop_size": {"height": 336, "width": 336},
		"size": {"shortest_edge": 336}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3}`), 0o644)
	p, err := LoadPreprocess(dir, 224)
	if err != nil || p.Size != 336 || p.CropSize != 336 || p.Mean[0] != 0.5 || p.Std[2] != 0.5 {
		t.Errorf("preprocessor config: %+v %v", p, err)
	}
	os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(`{"crop_size": 224, "size": 224, "resample": 2}`), 0o644)
	if _, err := LoadPreprocess(dir, 224); err == nil {
		t.Error("bilinear resample accepted")
	}
}

// TestRandomViTL14 builds the ViT-L/14-shaped tower with random weights and runs one image through the first
// layer (the whole tower is the benchmark's job). Skipped with -short: it allocates 1.2 GB of weights.
func TestRandomViTL14(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 1.2 GB of weights")
	}
	m, err := RandomWeights(ConfigViTL14(), 1, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range m.Variables() {
		n += v.Shape().Size()
	}
	if int64(n) != ConfigViTL14().NumParams() {
		t.Errorf("%d weights, config says %d", n, ConfigViTL14().NumParams())
	}
	enc, err := m.NewEncoder(device.MustShared(), FeatureOptions{Layers: []int{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	px := make([]float32, 3*224*224)
	for i := range px {
		px[i] = float32(i%97)/50 - 1
	}
	feats, err := enc.Encode([][]float32{px})
	if err != nil {
		t.Fatal(err)
	}
	if len(feats[0]) != 2*1024 {
		t.Fatalf("%d values, want 2×1024", len(feats[0]))
	}
	// Layer 0 is the pre-layernormed class token, which depends only on the weights: class embedding plus the
	// first position embedding, layer-normed (scale 1, bias 0). Recompute it on the host.
	cls := tensors.MustCopyFlatData[float32](m.vars["embeddings.class_embedding"].MustValue())
	pos := tensors.MustCopyFlatData[float32](m.vars["embeddings.position_embedding.weight"].MustValue())[:1024]
	x := make([]float64, 1024)
	mean, variance := 0.0, 0.0
	for i := range x {
		x[i] = float64(cls[i]) + float64(pos[i])
		mean += x[i] / 1024
	}
	for i := range x {
		variance += (x[i] - mean) * (x[i] - mean) / 1024
	}
	want := make([]float32, 1024)
	for i := range x {
		want[i] = float32((x[i] - mean) / math.Sqrt(variance+1e-5))
	}
	if d := assets.MaxAbsDiff(feats[0][:1024], want); d > 1e-4 {
		t.Errorf("pre-layernormed class token differs from the host computation by %g", d)
	}
	for _, v := range feats[0] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite feature")
		}
	}
}
