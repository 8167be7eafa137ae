package torchpth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/atomicfile"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/compute/dtypes/bfloat16"
)

const (
	nLayers  = 4 // llama_tiny
	nHeads   = 4
	nKVHeads = 2
)

func openPth(t *testing.T, path string) *File {
	t.Helper()
	pf, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Close() })
	return pf
}

// openST opens the safetensors file a .pth is compared with, closed when the test ends.
func openST(t *testing.T, path string) *safetensors.File {
	t.Helper()
	sf, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sf.Close() })
	return sf
}

func readF32(t *testing.T, pf *File, name string) ([]float32, []int) {
	t.Helper()
	v, s, err := pf.ReadFloat32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

func readST(t *testing.T, sf *safetensors.File, name string) ([]float32, []int) {
	t.Helper()
	v, s, err := sf.ReadFloat32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// bitsEqual fails unless a and b are equal bit for bit.
func bitsEqual(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, want %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, a[i], b[i])
		}
	}
}

// metaToHF maps Meta's names to the HF names whose tensors have the identical layout.
func metaToHF() map[string]string {
	m := map[string]string{
		"tok_embeddings.weight": "model.embed_tokens.weight",
		"norm.weight":           "model.norm.weight",
		"output.weight":         "lm_head.weight",
	}
	for i := range nLayers {
		p, h := fmt.Sprintf("layers.%d.", i), fmt.Sprintf("model.layers.%d.", i)
		m[p+"attention.wv.weight"] = h + "self_attn.v_proj.weight"
		m[p+"attention.wo.weight"] = h + "self_attn.o_proj.weight"
		m[p+"feed_forward.w1.weight"] = h + "mlp.gate_proj.weight"
		m[p+"feed_forward.w2.weight"] = h + "mlp.down_proj.weight"
		m[p+"feed_forward.w3.weight"] = h + "mlp.up_proj.weight"
		m[p+"attention_norm.weight"] = h + "input_layernorm.weight"
		m[p+"ffn_norm.weight"] = h + "post_attention_layernorm.weight"
	}
	return m
}

// unpermute maps Meta's interleaved rotary row order back to HF's half-split order: Meta row h·hd + 2i + j holds
// HF row h·hd + j·hd/2 + i (the inverse of make_golden.py's meta_perm_inv).
func unpermute(meta []float32, rows, cols, heads int) []float32 {
	hd := rows / heads
	out := make([]float32, len(meta))
	for h := range heads {
		for i := range hd / 2 {
			for j := range 2 {
				src, dst := h*hd+2*i+j, h*hd+j*hd/2+i
				copy(out[dst*cols:(dst+1)*cols], meta[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

func TestMetaFloat32MatchesHF(t *testing.T) {
	pf := openPth(t, assets.Require(t, assets.Golden("llama_tiny_meta", "consolidated.00.pth")))
	sf := openST(t, assets.Require(t, assets.Golden("llama_tiny", "model.safetensors")))

	if n := len(pf.Names()); n != 3+9*nLayers {
		t.Fatalf("%d tensors, want %d", n, 3+9*nLayers)
	}
	if pf.Names()[0] != "tok_embeddings.weight" {
		t.Errorf("first tensor %q, want pickle order starting with tok_embeddings.weight", pf.Names()[0])
	}
	same := metaToHF()
	for _, name := range pf.Names() {
		info, ok := pf.Info(name)
		if !ok || info.DType != safetensors.F32 || !info.Contiguous() {
			t.Fatalf("%s: info %+v", name, info)
		}
		got, shape := readF32(t, pf, name)
		var hfName string
		heads := 0
		switch {
		case same[name] != "":
			hfName = same[name]
		case strings.HasSuffix(name, "attention.wq.weight"):
			hfName, heads = strings.Replace(strings.Replace(name, "layers.", "model.layers.", 1), "attention.wq", "self_attn.q_proj", 1), nHeads
		case strings.HasSuffix(name, "attention.wk.weight"):
			hfName, heads = strings.Replace(strings.Replace(name, "layers.", "model.layers.", 1), "attention.wk", "self_attn.k_proj", 1), nKVHeads
		default:
			t.Fatalf("unexpected tensor %q", name)
		}
		want, wantShape := readST(t, sf, hfName)
		if !slices.Equal(shape, wantShape) || !slices.Equal(info.Shape, wantShape) {
			t.Fatalf("%s: shape %v, want %v (%s)", name, shape, wantShape, hfName)
		}
		if heads > 0 {
			got = unpermute(got, shape[0], shape[1], heads)
		}
		bitsEqual(t, name+" vs "+hfName, got, want)
	}
}

func TestMetaBFloat16(t *testing.T) {
	f32 := openPth(t, assets.Require(t, assets.Golden("llama_tiny_meta", "consolidated.00.pth")))
	b16 := openPth(t, assets.Require(t, assets.Golden("llama_tiny_meta", "consolidated_bf16.pth")))
	if !slices.Equal(f32.Names(), b16.Names()) {
		t.Fatalf("names differ:\n%v\n%v", f32.Names(), b16.Names())
	}
	changed := 0
	for _, name := range b16.Names() {
		if info, _ := b16.Info(name); info.DType != safetensors.BF16 {
			t.Fatalf("%s: dtype %s, want BF16", name, info.DType)
		}
		ref, _ := readF32(t, f32, name)
		bits, shape, err := b16.ReadBFloat16(name)
		if err != nil {
			t.Fatal(err)
		}
		asF32, shape2 := readF32(t, b16, name)
		fromF32, _, err := f32.ReadBFloat16(name) // float32 storage rounded on read
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, shape2) || len(bits) != len(ref) {
			t.Fatalf("%s: shapes %v %v, %d values, want %d", name, shape, shape2, len(bits), len(ref))
		}
		for i, v := range ref {
			want := bfloat16.FromFloat32(v)
			if bits[i] != want || fromF32[i] != want || math.Float32bits(asF32[i]) != math.Float32bits(want.Float32()) {
				t.Fatalf("%s[%d]: bf16 %#04x (as f32 %v, from f32 file %#04x), want %#04x = round(%v)",
					name, i, uint16(bits[i]), asF32[i], uint16(fromF32[i]), uint16(want), v)
			}
			if want.Float32() != v {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("no value changed by bf16 rounding: the comparison cannot tell the files apart")
	}
}

func TestOfficialAdapter(t *testing.T) {
	pf := openPth(t, assets.Require(t, assets.Golden("adapter_tiny", "official_adapter.pth")))
	sf := openST(t, assets.Require(t, assets.Golden("adapter_tiny", "adapter.safetensors")))
	prompts, ps := readST(t, sf, "prompts") // [L, K, C]
	gates, gs := readST(t, sf, "gates")     // [L, H]
	L, K, C, H := ps[0], ps[1], ps[2], gs[1]

	wantNames := []string{"adapter_query.weight"}
	for j := range L {
		wantNames = append(wantNames, fmt.Sprintf("layers.%d.attention.gate", nLayers-L+j))
	}
	if !slices.Equal(pf.Names(), wantNames) {
		t.Fatalf("names %v, want %v", pf.Names(), wantNames)
	}
	q, qs := readF32(t, pf, "adapter_query.weight")
	if !slices.Equal(qs, []int{L * K, C}) {
		t.Fatalf("adapter_query.weight shape %v, want [%d %d]", qs, L*K, C)
	}
	// Rows j·K..(j+1)·K are prompts[j]: with row-major layouts the flat arrays coincide.
	bitsEqual(t, "adapter_query.weight vs prompts", q, prompts)
	for j := range L {
		name := wantNames[1+j]
		g, shape := readF32(t, pf, name)
		if !slices.Equal(shape, []int{1, H, 1, 1}) {
			t.Fatalf("%s shape %v, want [1 %d 1 1]", name, shape, H)
		}
		bitsEqual(t, name, g, gates[j*H:(j+1)*H])
	}
}

// TestRoundTripGolden rewrites every tensor of the Meta checkpoint and of the bf16 one with Write and reads them
// back bit for bit, and checks the zip layout matches what torch 2.x writes.
func TestRoundTripGolden(t *testing.T) {
	for _, file := range []string{"consolidated.00.pth", "consolidated_bf16.pth"} {
		src := openPth(t, assets.Require(t, assets.Golden("llama_tiny_meta", file)))
		var tensors []Tensor
		for _, name := range src.Names() {
			raw, info, err := src.ReadRaw(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			tensors = append(tensors, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
		}
		out := filepath.Join(t.TempDir(), "rt.pth")
		if err := Write(out, tensors); err != nil {
			t.Fatal(err)
		}
		back := openPth(t, out)
		if !slices.Equal(back.Names(), src.Names()) {
			t.Fatalf("%s: names after round trip %v", file, back.Names())
		}
		for _, want := range tensors {
			raw, info, err := back.ReadRaw(want.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if info.DType != want.DType || !slices.Equal(info.Shape, want.Shape) || !bytes.Equal(raw, want.Data) {
				t.Fatalf("%s: %s differs after round trip (%s %v)", file, want.Name, info.DType, info.Shape)
			}
		}
		checkLayout(t, out, len(tensors))
	}
}

// checkLayout compares the zip listing with the records torch 2.x writes (see the golden files) and checks that
// every record's data is 64-byte aligned.
func checkLayout(t *testing.T, path string, n int) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := []string{"archive/data.pkl", "archive/.format_version", "archive/.storage_alignment", "archive/byteorder"}
	for i := range n {
		want = append(want, fmt.Sprintf("archive/data/%d", i))
	}
	want = append(want, "archive/version", "archive/.data/serialization_id")
	var got []string
	for _, f := range zr.File {
		got = append(got, f.Name)
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%storageAlignment != 0 || f.Method != zip.Store {
			t.Errorf("%s: data at offset %d (method %d), want stored and %d-aligned", f.Name, off, f.Method, storageAlignment)
		}
		rc, err := f.Open() // checks the CRC
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(rc); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		rc.Close()
		wantBody := map[string]string{"archive/version": "3\n", "archive/byteorder": "little",
			"archive/.format_version": "1", "archive/.storage_alignment": "64"}[f.Name]
		if wantBody != "" && b.String() != wantBody {
			t.Errorf("%s holds %q, want %q", f.Name, b.String(), wantBody)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("zip records\n%v\nwant\n%v", got, want)
	}
}

func TestRoundTripDTypes(t *testing.T) {
	vals := []float32{1.5, -2.25, 3.1415927, 1e-3, -0, 65504, 7, 8, 9, 10, 11, 12}
	i64 := make([]byte, 8*3)
	for i, v := range []int64{-1, 1 << 40, 7} {
		binary.LittleEndian.PutUint64(i64[8*i:], uint64(v))
	}
	tensors := []Tensor{
		Float32Tensor("w.f32", []int{3, 4}, vals, safetensors.F32),
		Float32Tensor("w.bf16", []int{2, 2, 3}, vals, safetensors.BF16),
		Float32Tensor("w.f16", []int{12}, vals, safetensors.F16),
		Float32Tensor("scalar", nil, vals[:1], safetensors.F32),
		Float32Tensor("empty", []int{0, 5}, nil, safetensors.F32),
		{Name: "ids", DType: safetensors.I64, Shape: []int{3}, Data: i64},
	}
	out := filepath.Join(t.TempDir(), "dtypes.pth")
	if err := Write(out, tensors); err != nil {
		t.Fatal(err)
	}
	pf := openPth(t, out)
	for _, want := range tensors {
		raw, info, err := pf.ReadRaw(want.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info.DType != want.DType || !slices.Equal(info.Shape, want.Shape) && len(want.Shape) > 0 || !bytes.Equal(raw, want.Data) {
			t.Fatalf("%s: got %s %v %x, want %s %v %x", want.Name, info.DType, info.Shape, raw, want.DType, want.Shape, want.Data)
		}
	}
	for _, name := range []string{"w.f32", "w.bf16", "w.f16"} {
		got, _ := readF32(t, pf, name)
		for i, v := range vals {
			tol := map[string]float64{"w.f32": 0, "w.bf16": 1.0 / 256, "w.f16": 1.0 / 2048}[name]
			if d := math.Abs(float64(got[i] - v)); d > tol*math.Abs(float64(v)) {
				t.Fatalf("%s[%d] = %v, want %v (rel tol %g)", name, i, got[i], v, tol)
			}
		}
	}
	if s, shape := readF32(t, pf, "scalar"); len(s) != 1 || s[0] != 1.5 || len(shape) != 0 {
		t.Fatalf("scalar: %v %v", s, shape)
	}
	if _, _, err := pf.ReadFloat32("ids"); err == nil || !strings.Contains(err.Error(), `"ids"`) || !strings.Contains(err.Error(), out) {
		t.Fatalf("ReadFloat32 of an int64 tensor: error %v, want one naming the file and tensor", err)
	}
	if _, _, err := pf.ReadFloat32("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing tensor: error %v", err)
	}
	// Writing is atomic: no temporary file is left next to the output.
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries after Write, want only the checkpoint", len(entries))
	}
}

func TestWriteValidates(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bad.pth")
	for _, ts := range [][]Tensor{
		{{Name: "a", DType: safetensors.F32, Shape: []int{2}, Data: make([]byte, 4)}},
		{{Name: "a", DType: "F8", Shape: []int{1}, Data: make([]byte, 1)}},
		{Float32Tensor("a", []int{1}, []float32{1}, safetensors.F32), Float32Tensor("a", []int{1}, []float32{1}, safetensors.F32)},
	} {
		if err := Write(out, ts); err == nil || !strings.Contains(err.Error(), out) {
			t.Errorf("Write(%v): error %v, want one naming the file", ts[0].Name, err)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed Write left %s behind", out)
	}
}

// writeCustom writes a checkpoint whose data.pkl is built by body (called after PROTO 2, before STOP) with
// the given storages, to test layouts Write does not produce: views, shared storages, nesting.
func writeCustom(t *testing.T, body func(p *pickler), storages ...[]byte) string {
	t.Helper()
	p := &pickler{memo: map[string]int{}}
	p.op(0x80, 2)
	body(p)
	p.op('.')
	tensors := make([]Tensor, len(storages))
	for i, s := range storages {
		tensors[i] = Tensor{Data: s}
	}
	out := filepath.Join(t.TempDir(), "custom.pth")
	if err := atomicfile.WriteFunc(out, 0o644, func(w io.Writer) error { return writeZip(w, p.buf.Bytes(), tensors) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// view pickles _rebuild_tensor_v2(storage key (F32, numel), offset, shape, stride, False, OrderedDict()).
func view(p *pickler, key string, numel, offset int, shape, stride []int) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage", true)
	p.global("torch", "FloatStorage")
	p.str(key, false)
	p.str("cpu", true)
	p.int(int64(numel))
	p.op('t', 'Q')
	p.int(int64(offset))
	p.intTuple(shape)
	p.intTuple(stride)
	p.op(0x89)
	p.global("collections", "OrderedDict")
	p.op(')', 'R', 't', 'R')
}

func f32Bytes(n int) ([]byte, []float32) {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i) + 0.5
	}
	b := make([]byte, 4*n)
	safetensors.EncodeFloat32(b, v, safetensors.F32)
	return b, v
}

func TestViewsAndNesting(t *testing.T) {
	data, v := f32Bytes(24)
	// {"model": OrderedDict(full=[4,6], t=full[1:].T (shape [6,3], stride [1,6], offset 6), col=full[:,2]
	//  (shape [4], stride [6], offset 2), row=full[3] (offset 18, contiguous)), "epoch": 3,
	//  "args": argparse.Namespace(...), "extra": [tensor]}
	path := writeCustom(t, func(p *pickler) {
		p.op('}', '(')
		p.str("model", false)
		p.global("collections", "OrderedDict")
		p.op(')', 'R', '(')
		p.str("full", false)
		view(p, "0", 24, 0, []int{4, 6}, []int{6, 1})
		p.str("t", false)
		view(p, "0", 24, 6, []int{6, 3}, []int{1, 6})
		p.str("col", false)
		view(p, "0", 24, 2, []int{4}, []int{6})
		p.str("row", false)
		view(p, "0", 24, 18, []int{6}, []int{1})
		p.op('u')
		p.str("epoch", false)
		p.int(3)
		p.str("args", false)
		p.global("argparse", "Namespace")
		p.op(')', 0x81, '}', '(')
		p.str("lr", false)
		p.int(1)
		p.op('u', 'b') // NEWOBJ, then BUILD with a dict state
		p.str("extra", false)
		p.op(']', '(')
		view(p, "1", 2, 0, []int{2}, []int{1})
		p.op('e') // APPENDS
		p.op('u')
	}, data, data[:8])
	pf := openPth(t, path)
	wantNames := []string{"model.full", "model.t", "model.col", "model.row", "extra.0"}
	if !slices.Equal(pf.Names(), wantNames) {
		t.Fatalf("names %v, want %v", pf.Names(), wantNames)
	}
	at := func(r, c int) float32 { return v[r*6+c] }
	var wantT, wantCol []float32
	for i := range 6 {
		for j := range 3 {
			wantT = append(wantT, at(1+j, i))
		}
	}
	for r := range 4 {
		wantCol = append(wantCol, at(r, 2))
	}
	for name, want := range map[string][]float32{"model.full": v, "model.t": wantT, "model.col": wantCol, "model.row": v[18:], "extra.0": v[:2]} {
		got, _ := readF32(t, pf, name)
		bitsEqual(t, name, got, want)
		bf, _, err := pf.ReadBFloat16(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if bf[i] != bfloat16.FromFloat32(want[i]) {
				t.Fatalf("%s[%d]: bf16 %v, want %v", name, i, bf[i].Float32(), want[i])
			}
		}
	}
	if info, _ := pf.Info("model.t"); info.Contiguous() {
		t.Fatal("transposed view reported contiguous")
	}
	pf.TrimPrefix("model.")
	if !slices.Equal(pf.Names(), []string{"full", "t", "col", "row"}) {
		t.Fatalf("after TrimPrefix: %v", pf.Names())
	}
	got, _ := readF32(t, pf, "t")
	bitsEqual(t, "t after TrimPrefix", got, wantT)
}

func TestCorruptFiles(t *testing.T) {
	golden := assets.Require(t, assets.Golden("llama_tiny_meta", "consolidated.00.pth"))
	full, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	data, _ := f32Bytes(4)
	cases := map[string]struct {
		path string
		want string
	}{
		"truncated": {write("truncated.pth", full[:len(full)/2]), "zip directory"},
		"empty":     {write("empty.pth", nil), "empty file"},
		"legacy":    {write("legacy.pth", []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'}), "legacy"},
		"text":      {write("text.pth", []byte("hello world")), "not a PyTorch zip checkpoint"},
		"bad pickle": {writeCustom(t, func(p *pickler) {
			p.op('(', 'u') // SETITEMS with nothing to set into
		}), "unpickling"},
		"short storage": {writeCustom(t, func(p *pickler) {
			p.op('}', '(')
			p.str("w", false)
			view(p, "0", 8, 0, []int{8}, []int{1})
			p.op('u')
		}, data), "holds 16 bytes, want 32"},
		"view past storage": {writeCustom(t, func(p *pickler) {
			p.op('}', '(')
			p.str("w", false)
			view(p, "0", 4, 2, []int{3}, []int{1})
			p.op('u')
		}, data), `tensor "w"`},
		"no tensors": {writeCustom(t, func(p *pickler) {
			p.op('}')
		}), "no tensors"},
	}
	for name, c := range cases {
		_, err := Open(c.path)
		if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open error %v, want one naming %s and saying %q", name, err, c.path, c.want)
		}
	}

	// A storage entry cut short after the directory was read: the tensor read fails naming file and tensor.
	cut := write("cut.pth", full)
	pf := openPth(t, cut)
	if err := os.Truncate(cut, 8192); err != nil {
		t.Fatal(err)
	}
	_, _, err = pf.ReadFloat32("output.weight")
	if err == nil || !strings.Contains(err.Error(), cut) || !strings.Contains(err.Error(), `"output.weight"`) {
		t.Fatalf("reading a truncated storage: error %v", err)
	}
}

// TestTorchWrittenViews reads testdata/views.pth and views_p4.pth (pickle protocol 4), written by torch 2.11
// (testdata/make_fixtures.py): views
// sharing one storage with offsets and strides, an nn.Parameter, float16, a strided bfloat16 slice, nested under
// "model" next to non-tensor entries.
func TestTorchWrittenViews(t *testing.T) {
	t.Run("protocol2", func(t *testing.T) { checkTorchViews(t, "views.pth") })
	t.Run("protocol4", func(t *testing.T) { checkTorchViews(t, "views_p4.pth") })
}

func checkTorchViews(t *testing.T, file string) {
	pf := openPth(t, filepath.Join("testdata", file))
	wantNames := []string{"model.full", "model.t", "model.col", "model.row", "model.p", "model.h", "model.b", "lst.0"}
	if !slices.Equal(pf.Names(), wantNames) {
		t.Fatalf("names %v, want %v", pf.Names(), wantNames)
	}
	at := func(r, c int) float32 { return float32(r*6+c) + 0.5 }
	var full, tr, col, row, p, b, lst []float32
	for r := range 4 {
		for c := range 6 {
			full = append(full, at(r, c))
		}
		col = append(col, at(r, 2))
		for c := 1; c < 4; c++ {
			b = append(b, at(r, c))
		}
	}
	for c := range 6 {
		for r := 1; r < 4; r++ {
			tr = append(tr, at(r, c))
		}
		row = append(row, at(3, c))
		lst = append(lst, at(0, c))
	}
	for i := range 15 {
		p = append(p, float32(i)*0.25-1)
	}
	cases := []struct {
		name   string
		dtype  string
		shape  []int
		stride []int
		offset int64
		want   []float32
	}{
		{"model.full", safetensors.F32, []int{4, 6}, []int{6, 1}, 0, full},
		{"model.t", safetensors.F32, []int{6, 3}, []int{1, 6}, 6, tr},
		{"model.col", safetensors.F32, []int{4}, []int{6}, 2, col},
		{"model.row", safetensors.F32, []int{6}, []int{1}, 18, row},
		{"model.p", safetensors.F32, []int{3, 5}, []int{5, 1}, 0, p},
		{"model.h", safetensors.F16, []int{4, 6}, []int{6, 1}, 0, full}, // values k+0.5 ≤ 23.5 are exact in f16
		{"model.b", safetensors.BF16, []int{4, 3}, []int{6, 1}, 1, b},   // and in bf16
		{"lst.0", safetensors.F32, []int{6}, []int{1}, 0, lst},
	}
	for _, c := range cases {
		info, _ := pf.Info(c.name)
		if info.DType != c.dtype || !slices.Equal(info.Shape, c.shape) || !slices.Equal(info.Stride, c.stride) || info.StorageOffset != c.offset {
			t.Fatalf("%s: info %+v, want %s %v stride %v offset %d", c.name, info, c.dtype, c.shape, c.stride, c.offset)
		}
		got, _ := readF32(t, pf, c.name)
		bitsEqual(t, c.name, got, c.want)
	}
	if a, b := pf.infos["model.full"].StorageKey, pf.infos["model.t"].StorageKey; a != b {
		t.Errorf("views of one tensor use storages %q and %q, want shared", a, b)
	}
}

func TestLegacyFormatRejected(t *testing.T) {
	path := filepath.Join("testdata", "legacy.pth")
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "legacy") {
		t.Fatalf("Open(legacy torch.save file): error %v, want one naming the file and the legacy format", err)
	}
}

// TestChunkedReads reruns the golden comparisons with a read buffer of a few elements, so that every tensor is
// converted over many chunks (with the default 1 MiB buffer the tiny golden tensors fit in one).
func TestChunkedReads(t *testing.T) {
	defer func(c int) { chunkSize = c }(chunkSize)
	chunkSize = 36
	t.Run("f32", TestMetaFloat32MatchesHF)
	t.Run("bf16", TestMetaBFloat16)
	t.Run("adapter", TestOfficialAdapter)
}

// readAll opens path and reads every tensor, returning the first error; it must never panic.
func readAll(path string) error {
	pf, err := Open(path)
	if err != nil {
		return err
	}
	defer pf.Close()
	for _, n := range pf.Names() {
		if _, _, err := pf.ReadRaw(n, nil); err != nil {
			return err
		}
		if _, _, err := pf.ReadFloat32(n); err != nil && !strings.Contains(err.Error(), "not floating point") {
			return err
		}
	}
	return nil
}

// FuzzOpen mutates whole checkpoint files.
func FuzzOpen(f *testing.F) {
	for _, p := range []string{filepath.Join("testdata", "views.pth"), filepath.Join("testdata", "legacy.pth")} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.pth")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := readAll(path); err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// FuzzPickle mutates data.pkl inside a well-formed archive with two float32 storages (6 and 2 elements).
func FuzzPickle(f *testing.F) {
	if zr, err := zip.OpenReader(filepath.Join("testdata", "views.pth")); err == nil {
		for _, e := range zr.File {
			if strings.HasSuffix(e.Name, "data.pkl") {
				rc, _ := e.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
		zr.Close()
	}
	p := &pickler{memo: map[string]int{}}
	p.op(0x80, 2, '}', '(')
	p.str("a", false)
	view(p, "0", 6, 1, []int{2, 2}, []int{1, 3})
	p.str("b", false)
	view(p, "1", 2, 0, []int{2}, []int{1})
	p.op('u', '.')
	f.Add(p.buf.Bytes())
	data, _ := f32Bytes(6)
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var buf bytes.Buffer // (no atomicfile.WriteFunc: its fsync would dominate the fuzzing time)
		if err := writeZip(&buf, pkl, []Tensor{{Data: data}, {Data: data[:8]}}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "p.pth")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := readAll(path); err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

func TestSelfReferencingPickle(t *testing.T) {
	// d = {}; d["self"] = [d]: EMPTY_DICT, BINPUT 0, "self", EMPTY_LIST, BINGET 0, APPEND, SETITEM.
	path := writeCustom(t, func(p *pickler) {
		p.op('}', 'q', 0)
		p.str("self", false)
		p.op(']', 'h', 0, 'a', 's')
	})
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("Open(self-referencing pickle): error %v", err)
	}
}

func TestSharedContainersPickle(t *testing.T) {
	// {"x": l25} with l0 = [] and l(i) = [l(i-1), l(i-1)]: 26 objects, 2^25 paths.
	path := writeCustom(t, func(p *pickler) {
		p.op('}')
		p.str("x", false)
		p.op(']', 'q', 0, '0') // build each list, memoize it, pop it
		for i := 1; i <= 25; i++ {
			p.op(']', '(', 'h', byte(i-1), 'h', byte(i-1), 'e', 'q', byte(i), '0')
		}
		p.op('h', 25, 's')
	})
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "objects to walk") {
		t.Fatalf("Open(exponentially shared pickle): error %v", err)
	}
}

func TestBigEndianRejected(t *testing.T) {
	zr, err := zip.OpenReader(filepath.Join("testdata", "views.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range zr.File {
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(e.Name, "/byteorder") {
			b = []byte("big")
		}
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: e.Name, Method: zip.Store})
		w.Write(b)
	}
	zw.Close()
	path := filepath.Join(t.TempDir(), "big.pth")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "endian") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(big-endian checkpoint): error %v", err)
	}
}

// TestWriteWrapped: {key: {name: tensor}} reads back as "key.name" with the values, shapes and order written, and
// its root is a plain dict (EMPTY_DICT, as torch.save pickles a dict) rather than an OrderedDict.
func TestWriteWrapped(t *testing.T) {
	out := filepath.Join(t.TempDir(), "wrapped.pth")
	a := Float32Tensor("transformer.h.2.attn.gating_factor", []int{1, 1, 4, 1}, []float32{1, -2, 3.5, 0.25}, safetensors.F32)
	b := Float32Tensor("transformer.h.2.attn.adapter_wte.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}, safetensors.F32)
	if err := WriteWrapped(out, "model", []Tensor{a, b}); err != nil {
		t.Fatal(err)
	}
	pf := openPth(t, out)
	if want := []string{"model." + a.Name, "model." + b.Name}; !slices.Equal(pf.Names(), want) {
		t.Fatalf("names %v, want %v", pf.Names(), want)
	}
	for _, w := range []Tensor{a, b} {
		raw, info, err := pf.ReadRaw("model."+w.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(raw, w.Data) || !slices.Equal(info.Shape, w.Shape) || info.DType != w.DType {
			t.Errorf("%s: %s %v, want %s %v (or bytes differ)", w.Name, info.DType, info.Shape, w.DType, w.Shape)
		}
	}
	if pkl := encodeStateDict([]Tensor{a}, "model"); pkl[2] != '}' || bytes.Contains(pkl[:8], []byte("OrderedDict")) {
		t.Errorf("wrapped pickle does not start with a plain dict: % x", pkl[:8])
	}
	if err := WriteWrapped(out, "", []Tensor{a}); err == nil {
		t.Error("empty wrapping key accepted")
	}
}
