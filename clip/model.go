// Package clip is the visual half of the multimodal LLaMA-Adapter: a frozen ViT vision tower in GoMLX — CLIP loaded
// from Hugging Face safetensors, or DINOv2 ViT-S/14 loaded from an ONNX file's initializers (LoadDINOv2) — with
// PIL-exact image preprocessing, multi-scale class-token features and an on-disk feature cache. It knows nothing
// about LLaMA.
//
// The tower follows Hugging Face's CLIPVisionModel(WithProjection): patch embedding (a stride-P convolution
// without bias, written here as patchify + matmul), class token, learned position embeddings, pre-layernorm
// ("pre_layrnorm", HF's spelling), N pre-norm encoder layers (layer_norm1 → multi-head self-attention with
// biased q/k/v/out projections → residual; layer_norm2 → fc1 → quick_gelu or gelu → fc2 → residual),
// post-layernorm of the class token and the visual projection. Weights are non-trainable variables of the
// Model's store (scope "/clip"): no gradient or optimizer state is ever made for them.
//
// DINOv2 is a configuration of the same encoder (Config's NoPreLayerNorm, LayerScale, PatchBias, PosGrid; exact
// GELU and eps 1e-6): its weights are stored under the same internal names (CLIP's), with the linear weights
// transposed to [out, in], the class token as class_embedding, the final layer norm as post_layernorm and the
// position embeddings resized on the host at load time.
//
// Multi-scale features (FeatureOptions): the class token of a set of encoder layers, each optionally
// post-layernormed and projected, stacked as [B, M, D]. The default set is M=3 evenly spaced layers ending at
// the last (N/3, 2N/3, N; 8, 16, 24 for ViT-L/14). The LLaMA-Adapter paper says only that it takes CLIP's
// "multi-scale global features" and concatenates them along the channel axis; the official repository
// (OpenGVLab/LLaMA-Adapter) never released the v1 ScienceQA code. Its closest released relative, the v2
// multimodal model (llama_adapter_v2_multimodal7b, clip_encode_image), runs OpenAI's ViT-L/14 to the last
// layer, applies ln_post and the projection to every token (all 257, not only the class token) and feeds them
// to a learned projection (Linear + LayerNorm) and visual query blocks. Evenly spaced class tokens are the
// simplest reading of "multi-scale global features"; post-norm and projection are options so either reading
// can be tried.
package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Scope is the store scope holding the frozen vision weights.
const Scope = "/clip"

// Model is a loaded, frozen CLIP vision tower.
type Model struct {
	Config Config
	// DType is the weights' and matmuls' dtype (float32, or bfloat16/float16); layer norms, softmax and the
	// outputs are float32.
	DType dtypes.DType
	// Source is where the weights came from (a path, or "random(seed=…)").
	Source string
	// Name says what tower this is, for tables and logs (e.g. DINOv2S14Name, or "CLIP ViT (<folder>)").
	Name string
	// Preprocess holds the image settings (from preprocessor_config.json next to the weights when present).
	Preprocess Preprocess
	// HasProjection says whether visual_projection.weight was loaded (CLIPVisionModelWithProjection, CLIPModel).
	HasProjection bool
	// WeightsHash is the sha256 (hex) of every vision tensor used — name, dtype, shape and raw bytes as stored —
	// plus the architecture: the model's identity in the feature cache.
	WeightsHash string
	// Store holds the weights as non-trainable variables under Scope.
	Store *model.Store

	vars map[string]*model.Variable
}

// Tensor names, relative to "vision_model." (visual_projection.weight is at the top level).
func (c Config) weightNames() []string {
	names := []string{"embeddings.class_embedding", "embeddings.patch_embedding.weight",
		"embeddings.position_embedding.weight"}
	if c.PatchBias {
		names = append(names, "embeddings.patch_embedding.bias")
	}
	if !c.NoPreLayerNorm {
		names = append(names, "pre_layrnorm.weight", "pre_layrnorm.bias")
	}
	for i := 0; i < c.NumLayers; i++ {
		for _, s := range []string{"layer_norm1.weight", "layer_norm1.bias", "self_attn.q_proj.weight",
			"self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
			"self_attn.v_proj.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias", "layer_norm2.weight",
			"layer_norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"} {
			names = append(names, fmt.Sprintf("encoder.layers.%d.%s", i, s))
		}
		if c.LayerScale {
			names = append(names, fmt.Sprintf("encoder.layers.%d.layer_scale1", i), fmt.Sprintf("encoder.layers.%d.layer_scale2", i))
		}
	}
	return append(names, "post_layernorm.weight", "post_layernorm.bias")
}

const projName = "visual_projection.weight"

func (c Config) expectedShape(name string) []int {
	C, F, P := c.HiddenSize, c.IntermediateSize, c.PatchSize
	switch {
	case name == projName:
		return []int{c.ProjectionDim, C}
	case name == "embeddings.patch_embedding.weight":
		return []int{C, c.NumChannels, P, P}
	case name == "embeddings.position_embedding.weight":
		return []int{c.SeqLen(), C}
	case strings.HasSuffix(name, "fc1.weight"):
		return []int{F, C}
	case strings.HasSuffix(name, "fc1.bias"):
		return []int{F}
	case strings.HasSuffix(name, "fc2.weight"):
		return []int{C, F}
	case strings.HasSuffix(name, "_proj.weight"):
		return []int{C, C}
	}
	return []int{C} // norms, biases, layer scales, class embedding
}

func newModel(cfg Config, dtype dtypes.DType, source string) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clip %s: %w", source, err)
	}
	if dtype != dtypes.Float32 && dtype != dtypes.BFloat16 && dtype != dtypes.Float16 {
		return nil, fmt.Errorf("clip: unsupported weight dtype %s (want float32, bfloat16 or float16)", dtype)
	}
	p := DefaultPreprocess()
	p.Size, p.CropSize = cfg.ImageSize, cfg.ImageSize
	return &Model{Config: cfg, DType: dtype, Source: source, Name: "CLIP ViT (" + filepath.Base(source) + ")",
		Preprocess: p, Store: model.NewStore(),
		vars: map[string]*model.Variable{}}, nil
}

// hashTensor feeds one tensor's identity into h.
func hashTensor(h hash.Hash, name, dtype string, shape []int, raw []byte) {
	fmt.Fprintf(h, "%s|%s|%v|%d\n", name, dtype, shape, len(raw))
	h.Write(raw)
}

func (m *Model) finishHash(h hash.Hash) {
	arch, _ := json.Marshal(m.Config)
	h.Write(arch)
	m.WeightsHash = hex.EncodeToString(h.Sum(nil))
}

// put stores a weight given as raw little-endian bytes of a safetensors dtype, converted to the model's dtype
// (bit-exact when they agree).
func (m *Model) put(name string, shape []int, raw []byte, diskDType string) error {
	t, err := safetensors.TensorFromRaw(m.DType, shape, raw, diskDType)
	if err != nil {
		return fmt.Errorf("clip %s: %s: %w", m.Source, name, err)
	}
	v, err := m.Store.CreateVariable(Scope+"/"+strings.ReplaceAll(name, ".", "/"), t)
	if err != nil {
		return fmt.Errorf("clip %s: %s: %w", m.Source, name, err)
	}
	v.SetTrainable(false)
	m.vars[name] = v
	return nil
}

// Load loads a vision tower from a Hugging Face checkpoint: a folder with config.json and model.safetensors (or
// a sharded model.safetensors.index.json), or a .safetensors file / index .json whose folder holds config.json.
// CLIPVisionModel, CLIPVisionModelWithProjection and full CLIPModel checkpoints work: only vision_model.* and
// visual_projection.weight are read (the text tower is ignored). Weights may be F32, F16 or BF16 on disk; they
// are converted to dtype. preprocessor_config.json in the folder, when present, sets Model.Preprocess.
func Load(path string, dtype dtypes.DType) (*Model, error) {
	dir := path
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	} else if !st.IsDir() {
		dir = filepath.Dir(path)
	}
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenModel(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	defer set.Close()
	m, err := newModel(cfg, dtype, path)
	if err != nil {
		return nil, err
	}
	if m.Preprocess, err = LoadPreprocess(dir, cfg.ImageSize); err != nil {
		return nil, err
	}
	names := cfg.weightNames()
	if set.Has(projName) {
		names = append(names, projName)
		m.HasProjection = true
	}
	h := sha256.New()
	var buf []byte
	for _, name := range names {
		disk := name
		if name != projName {
			disk = "vision_model." + name
		}
		info, f, ok := set.Info(disk)
		if !ok {
			return nil, fmt.Errorf("clip %s: missing tensor %q (is this a CLIP vision checkpoint?)", path, disk)
		}
		if want := cfg.expectedShape(name); !slices.Equal(want, info.Shape) {
			return nil, fmt.Errorf("clip %s: tensor %q in %s has shape %v but config.json implies %v", path, disk, f.Path, info.Shape, want)
		}
		raw, _, err := f.ReadRaw(disk, buf)
		if err != nil {
			return nil, fmt.Errorf("clip %s: %w", path, err)
		}
		buf = raw[:0]
		hashTensor(h, name, info.DType, info.Shape, raw)
		if err := m.put(name, info.Shape, raw, info.DType); err != nil {
			return nil, err
		}
	}
	m.finishHash(h)
	return m, nil
}

// RandomWeights builds a model with deterministic random weights (for benchmarks and shape checks; e.g.
// RandomWeights(ConfigViTL14(), 1, dtypes.Float32)): matrices and embeddings ~ N(0, 0.02²), norm scales 1,
// biases 0, with a projection.
func RandomWeights(cfg Config, seed uint64, dtype dtypes.DType) (*Model, error) {
	m, err := newModel(cfg, dtype, fmt.Sprintf("random(seed=%d)", seed))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x636c6970))
	h := sha256.New()
	m.HasProjection = true
	for _, name := range append(cfg.weightNames(), projName) {
		shape := cfg.expectedShape(name)
		n := 1
		for _, d := range shape {
			n *= d
		}
		vals := make([]float32, n)
		switch {
		case strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight"), strings.Contains(name, "layer_scale"):
			for i := range vals {
				vals[i] = 1
			}
		case strings.HasSuffix(name, ".bias"):
		default:
			for i := range vals {
				vals[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		raw := make([]byte, 4*n)
		safetensors.EncodeFloat32(raw, vals, safetensors.F32)
		hashTensor(h, name, safetensors.F32, shape, raw)
		if err := m.put(name, shape, raw, safetensors.F32); err != nil {
			return nil, err
		}
	}
	m.finishHash(h)
	return m, nil
}

// Variables returns every weight variable (all non-trainable), sorted by path.
func (m *Model) Variables() []*model.Variable {
	vs := make([]*model.Variable, 0, len(m.vars))
	for _, v := range m.vars {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Path() < vs[j].Path() })
	return vs
}

func (m *Model) w(g *Graph, name string) *Node { return m.vars[name].NodeValue(g) }

// Outputs of Forward. Every node is float32.
type Outputs struct {
	// Hidden are the hidden states [B, S, C] asked for: Hidden[0] the embeddings (after pre-layernorm when the
	// config has one), Hidden[i] the output of encoder layer i (HF's output_hidden_states).
	Hidden []*Node
	// Last is the output of the last layer run [B, S, C] (HF's last_hidden_state when all N layers run).
	Last *Node
	// Pooled is post_layernorm(Last[:, 0]) [B, C] (HF's pooler_output); Embeds its projection [B, ProjectionDim]
	// (HF's image_embeds), nil without a projection.
	Pooled, Embeds *Node
}

// layerNorm normalizes over the last axis in float32 (biased variance, as torch.nn.LayerNorm).
func (m *Model) layerNorm(x *Node, prefix string) *Node {
	g := x.Graph()
	xf := ConvertDType(x, dtypes.Float32)
	mean := ReduceAndKeep(xf, ReduceMean, -1)
	xc := Sub(xf, mean)
	variance := ReduceAndKeep(Square(xc), ReduceMean, -1)
	y := Div(xc, Sqrt(AddScalar(variance, m.Config.LayerNormEps)))
	w := ConvertDType(m.w(g, prefix+".weight"), dtypes.Float32)
	b := ConvertDType(m.w(g, prefix+".bias"), dtypes.Float32)
	return Add(Mul(y, ExpandLeftToRank(w, x.Rank())), ExpandLeftToRank(b, x.Rank()))
}

// dense computes x [..., in] · Wᵀ (+ b) for a PyTorch-layout weight W [out, in], in the model's dtype.
func (m *Model) dense(x *Node, prefix string, bias bool) *Node {
	g := x.Graph()
	x = ConvertDType(x, m.DType)
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, m.w(g, prefix+".weight"), []int{1}, nil)
	if bias {
		y = Add(y, ExpandLeftToRank(m.w(g, prefix+".bias"), y.Rank()))
	}
	return y
}

// scaleBranch applies LayerScale (a per-channel float32 multiply) to a residual branch when the config has it.
func (m *Model) scaleBranch(x *Node, name string) *Node {
	if !m.Config.LayerScale {
		return x
	}
	return Mul(x, ExpandLeftToRank(ConvertDType(m.w(x.Graph(), name), dtypes.Float32), x.Rank()))
}

func (m *Model) activation(x *Node) *Node {
	xf := ConvertDType(x, dtypes.Float32)
	if m.Config.HiddenAct == "gelu" {
		// Exact GELU (PyTorch's default): x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
		return Mul(MulScalar(xf, 0.5), OnePlus(Erf(MulScalar(xf, 1/math.Sqrt2))))
	}
	return Mul(xf, Sigmoid(MulScalar(xf, 1.702))) // quick_gelu
}

// Forward runs the tower on pixels [B, 3, ImageSize, ImageSize] (float32, preprocessed) through layers
// 1..upTo (upTo <= 0 or > N means all N). With hidden, every hidden state is returned. Pooled and Embeds come
// from the last layer run.
func (m *Model) Forward(pixels *Node, upTo int, hidden bool) Outputs {
	cfg := m.Config
	g := pixels.Graph()
	if upTo <= 0 || upTo > cfg.NumLayers {
		upTo = cfg.NumLayers
	}
	B := pixels.Shape().Dimensions[0]
	C, P, G, S := cfg.HiddenSize, cfg.PatchSize, cfg.Grid(), cfg.SeqLen()
	H, D := cfg.NumHeads, cfg.HeadDim()

	// Patch embedding: a stride-P convolution without bias is a matmul over non-overlapping P×P patches.
	x := ConvertDType(pixels, m.DType)
	x = Reshape(x, B, cfg.NumChannels, G, P, G, P)
	x = TransposeAllDims(x, 0, 2, 4, 1, 3, 5) // [B, gy, gx, ch, py, px]
	x = Reshape(x, B, G*G, cfg.NumChannels*P*P)
	patchW := Reshape(m.w(g, "embeddings.patch_embedding.weight"), C, cfg.NumChannels*P*P)
	x = DotGeneral(x, []int{2}, nil, patchW, []int{1}, nil) // [B, G², C]
	if cfg.PatchBias {
		x = Add(x, ExpandLeftToRank(m.w(g, "embeddings.patch_embedding.bias"), 3))
	}
	cls := BroadcastToDims(Reshape(m.w(g, "embeddings.class_embedding"), 1, 1, C), B, 1, C)
	x = Concatenate([]*Node{cls, x}, 1)
	x = Add(ConvertDType(x, dtypes.Float32),
		InsertAxes(ConvertDType(m.w(g, "embeddings.position_embedding.weight"), dtypes.Float32), 0))
	if !cfg.NoPreLayerNorm {
		x = m.layerNorm(x, "pre_layrnorm") // residual stream kept in float32
	}

	var out Outputs
	if hidden {
		out.Hidden = append(out.Hidden, x)
	}
	scale := 1 / math.Sqrt(float64(D))
	for i := 0; i < upTo; i++ {
		p := fmt.Sprintf("encoder.layers.%d.", i)
		h := m.layerNorm(x, p+"layer_norm1")
		q := Reshape(m.dense(h, p+"self_attn.q_proj", true), B, S, H, D)
		k := Reshape(m.dense(h, p+"self_attn.k_proj", true), B, S, H, D)
		v := Reshape(m.dense(h, p+"self_attn.v_proj", true), B, S, H, D)
		scores := MulScalar(ConvertDType(Einsum("bqhd,bkhd->bhqk", q, k), dtypes.Float32), scale)
		probs := ConvertDType(Softmax(scores, -1), m.DType)
		attn := Reshape(Einsum("bhqk,bkhd->bqhd", probs, v), B, S, C)
		x = Add(x, m.scaleBranch(ConvertDType(m.dense(attn, p+"self_attn.out_proj", true), dtypes.Float32), p+"layer_scale1"))
		h = m.layerNorm(x, p+"layer_norm2")
		h = m.activation(m.dense(h, p+"mlp.fc1", true))
		x = Add(x, m.scaleBranch(ConvertDType(m.dense(h, p+"mlp.fc2", true), dtypes.Float32), p+"layer_scale2"))
		if hidden {
			out.Hidden = append(out.Hidden, x)
		}
	}
	out.Last = x
	cls0 := Reshape(Slice(x, AxisRange(), AxisElem(0), AxisRange()), B, C)
	out.Pooled = m.layerNorm(cls0, "post_layernorm")
	if m.HasProjection {
		out.Embeds = ConvertDType(m.dense(out.Pooled, "visual_projection", false), dtypes.Float32)
	}
	return out
}
