package llama

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/adapterlab/llama-adapter/models/safetensors/safetensorstest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// golden reads a float32 tensor from a golden safetensors file.
func golden(t *testing.T, path, name string) ([]float32, []int) {
	t.Helper()
	return safetensorstest.Float32(t, path, name)
}

func goldenIDs(t *testing.T, path string) [][]int32 {
	t.Helper()
	ids, shape := safetensorstest.Int64(t, path, "input_ids")
	out := make([][]int32, shape[0])
	for b := range out {
		for s := 0; s < shape[1]; s++ {
			out[b] = append(out[b], int32(ids[b*shape[1]+s]))
		}
	}
	return out
}

// runHidden returns logits and hidden states for token ids.
func runHidden(t *testing.T, m *Model, ids [][]int32) ([]float32, [][]float32) {
	t.Helper()
	exec, err := model.NewExec(device.MustShared(), m.Store, func(scope *model.Scope, tokens *Node) []*Node {
		out := m.Forward(tokens.Graph(), Inputs{Tokens: tokens, Hidden: true})
		return append([]*Node{out.Logits}, out.Hidden...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromValue(ids))
	if err != nil {
		t.Fatal(err)
	}
	var hidden [][]float32
	for _, h := range outs[1:] {
		h32 := h
		if h.DType() != dtypes.Float32 {
			h32 = convertToF32(t, h)
		}
		hidden = append(hidden, tensors.MustCopyFlatData[float32](h32))
	}
	return tensors.MustCopyFlatData[float32](outs[0]), hidden
}

func convertToF32(t *testing.T, x *tensors.Tensor) *tensors.Tensor {
	return MustExecOnce(device.MustShared(), func(x *Node) *Node { return ConvertDType(x, dtypes.Float32) }, x)
}

// loadLlamaTiny loads the llama_tiny golden model (Hugging Face safetensors) with weights of dtype.
func loadLlamaTiny(t *testing.T, dtype dtypes.DType) *Model {
	t.Helper()
	m, err := Load(assets.Require(t, assets.Golden("llama_tiny")), dtype)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGoldenLlamaTinyF32(t *testing.T) {
	m := loadLlamaTiny(t, dtypes.Float32)
	gpath := assets.Golden("llama_tiny", "golden.safetensors")
	ids := goldenIDs(t, gpath)
	logits, hidden := runHidden(t, m, ids)
	want, _ := golden(t, gpath, "logits")
	if d := assets.MaxAbsDiff(logits, want); d > 1e-4 {
		t.Errorf("logits differ from golden by %g (> 1e-4)", d)
	} else {
		t.Logf("logits max |diff| = %.3g", d)
	}
	if len(hidden) != m.Config.NumLayers+1 {
		t.Fatalf("got %d hidden states", len(hidden))
	}
	for i, h := range hidden {
		w, _ := golden(t, gpath, fmt.Sprintf("hidden_%d", i))
		if d := assets.MaxAbsDiff(h, w); d > 1e-4 {
			t.Errorf("hidden_%d differs from golden by %g (> 1e-4)", i, d)
		}
	}
}

// TestGoldenLlamaTinyBF16 runs the same model with bfloat16 weights and matmuls (norms and softmax in float32) and
// bounds the error against the float32 golden logits.
func TestGoldenLlamaTinyBF16(t *testing.T) {
	m := loadLlamaTiny(t, dtypes.BFloat16)
	gpath := assets.Golden("llama_tiny", "golden.safetensors")
	logits, _ := runHidden(t, m, goldenIDs(t, gpath))
	want, _ := golden(t, gpath, "logits")
	d := assets.MaxAbsDiff(logits, want)
	t.Logf("bfloat16 logits: max |diff| vs float32 golden = %.4g", d)
	// Measured 0.0054 (logits of magnitude ~1); bf16 keeps 8 mantissa bits.
	if d > 0.01 {
		t.Errorf("bfloat16 logits differ by %g (> 0.01)", d)
	}
}

// saveHFCopy writes the llama_tiny weights again in another layout: dtype on disk and number of shards.
func saveHFCopy(t *testing.T, dtype string, shards int) string {
	t.Helper()
	src := assets.Require(t, assets.Golden("llama_tiny"))
	set, err := safetensors.OpenModel(src)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	names := set.Names()
	weightMap := map[string]string{}
	per := (len(names) + shards - 1) / shards
	for s := 0; s < shards; s++ {
		var ts []safetensors.Tensor
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		if shards == 1 {
			file = "model.safetensors"
		}
		for _, n := range names[s*per : min((s+1)*per, len(names))] {
			v, shape, err := set.ReadFloat32(n)
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, safetensors.Float32Tensor(n, shape, v, dtype))
			weightMap[n] = file
		}
		if err := safetensors.Write(filepath.Join(dir, file), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if shards > 1 {
		idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
		if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFile), idx, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHFLayouts saves llama_tiny sharded and in f16/bf16 and checks each loads to the expected logits: sharded f32
// bit-identical to the original; f16/bf16 storage equal to computing with the rounded weights.
func TestHFLayouts(t *testing.T) {
	gpath := assets.Require(t, assets.Golden("llama_tiny", "golden.safetensors"))
	ids := goldenIDs(t, gpath)
	want, _ := golden(t, gpath, "logits")
	orig, err := Load(assets.Golden("llama_tiny"), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	origLogits, _ := runHidden(t, orig, ids)

	sharded, err := Load(saveHFCopy(t, safetensors.F32, 3), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := runHidden(t, sharded, ids)
	if d := assets.MaxAbsDiff(got, origLogits); d != 0 {
		t.Errorf("sharded f32 checkpoint: logits differ by %g from the single file", d)
	}
	for _, dt := range []string{safetensors.F16, safetensors.BF16} {
		m, err := Load(saveHFCopy(t, dt, 2), dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := runHidden(t, m, ids)
		if dt == safetensors.BF16 {
			// The golden logits of llama_tiny_meta were computed in f32 with every weight rounded to bf16.
			bf, _ := golden(t, assets.Require(t, assets.Golden("llama_tiny_meta", "golden.safetensors")), "logits_bf16_weights")
			if d := assets.MaxAbsDiff(got, bf); d > 1e-4 {
				t.Errorf("bf16 storage: logits differ from logits_bf16_weights by %g", d)
			}
			continue
		}
		d := assets.MaxAbsDiff(got, want)
		t.Logf("%s storage, f32 compute: max |diff| vs golden = %.3g", dt, d)
		if d > 1e-3 || d == 0 { // measured 4.8e-4: f16 rounding of the weights, not a loading error
			t.Errorf("%s storage: |diff| %g not in (0, 1e-3]", dt, d)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBadCheckpoints checks that broken inputs give errors naming the file and the problem.
func TestBadCheckpoints(t *testing.T) {
	src := assets.Require(t, assets.Golden("llama_tiny"))
	cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
	weights, _ := os.ReadFile(filepath.Join(src, "model.safetensors"))
	// Truncated safetensors.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), cfg)
	writeFile(t, filepath.Join(dir, "model.safetensors"), weights[:len(weights)-1000])
	_, err := Load(dir, dtypes.Float32)
	assets.WantErr(t, err, "truncated", "model.safetensors", "truncated")

	// Wrong shape and missing tensor: rewrite the file with one tensor changed / dropped.
	set, err := safetensors.OpenModel(src)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	rewrite := func(mutate func(name string, v []float32, shape []int) (string, []float32, []int, bool)) string {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, "config.json"), cfg)
		var ts []safetensors.Tensor
		for _, n := range set.Names() {
			v, s, _ := set.ReadFloat32(n)
			if n2, v2, s2, keep := mutate(n, v, s); keep {
				ts = append(ts, safetensors.Float32Tensor(n2, s2, v2, safetensors.F32))
			}
		}
		if err := safetensors.Write(filepath.Join(d, "model.safetensors"), ts, nil); err != nil {
			t.Fatal(err)
		}
		return d
	}
	bad := rewrite(func(n string, v []float32, s []int) (string, []float32, []int, bool) {
		if n == "model.layers.1.self_attn.k_proj.weight" {
			return n, v[:len(v)/2], []int{s[0] / 2, s[1]}, true
		}
		return n, v, s, true
	})
	_, err = Load(bad, dtypes.Float32)
	assets.WantErr(t, err, "wrong shape", "model.layers.1.self_attn.k_proj.weight", "shape [16 64]", "[32 64]")
	missing := rewrite(func(n string, v []float32, s []int) (string, []float32, []int, bool) {
		return n, v, s, n != "model.layers.2.mlp.up_proj.weight"
	})
	_, err = Load(missing, dtypes.Float32)
	assets.WantErr(t, err, "missing tensor", "missing tensor", "model.layers.2.mlp.up_proj.weight")

	// Config that disagrees with the weights.
	d := t.TempDir()
	writeFile(t, filepath.Join(d, "config.json"), []byte(strings.Replace(string(cfg), `"intermediate_size": 176`, `"intermediate_size": 128`, 1)))
	writeFile(t, filepath.Join(d, "model.safetensors"), weights)
	_, err = Load(d, dtypes.Float32)
	assets.WantErr(t, err, "config mismatch", "mlp.gate_proj.weight", "shape [176 64]", "F=128")

	// llama2.c file whose size disagrees with its header.
	bin := assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	data, _ := os.ReadFile(bin)
	short := filepath.Join(t.TempDir(), "short.bin")
	writeFile(t, short, data[:len(data)-4])
	_, err = Load(short, dtypes.Float32)
	assets.WantErr(t, err, "llama2.c size", "short.bin", "implies")
}

// TestSeqLensAndCoreAttention checks a right-padded batch three ways on the real positions: one row at a time, the
// padded batch with SeqLens (own attention), and the same through GoMLX's attention.Core (the path a backend with
// fused attention takes).
func TestSeqLensAndCoreAttention(t *testing.T) {
	m := loadLlamaTiny(t, dtypes.Float32)
	rows := [][]int32{{1, 5, 9, 200, 17, 3, 44, 90}, {1, 7, 7, 7, 0, 0, 0, 0}, {1, 100, 101, 102, 103, 104, 0, 0}}
	lens := []int32{8, 4, 6}
	run := func(force bool) []float32 {
		out, err := model.CallOnceN(device.MustShared(), m.Store, func(scope *model.Scope, tokens, seqLens *Node) *Node {
			return m.forward(tokens.Graph(), Inputs{Tokens: tokens, SeqLens: seqLens}, force).Logits
		}, rows, lens)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	own, core := run(false), run(true)
	V, S := m.Config.VocabSize, 8
	for b, row := range rows {
		single, _ := runHidden(t, m, [][]int32{row[:lens[b]]})
		for s := 0; s < int(lens[b]); s++ {
			for v := 0; v < V; v++ {
				want := single[s*V+v]
				for name, got := range map[string]float32{"own": own[(b*S+s)*V+v], "core": core[(b*S+s)*V+v]} {
					if d := math.Abs(float64(got - want)); d > 1e-5 {
						t.Fatalf("%s attention, row %d pos %d: logit %d differs by %g from the unpadded row", name, b, s, v, d)
					}
				}
			}
		}
	}
}

// TestMetaLayout loads llama_tiny from Meta's original layout: float32 storage gives the HF golden logits, and
// bfloat16 storage gives logits_bf16_weights (every weight rounded to bf16, computed in float32).
func TestMetaLayout(t *testing.T) {
	dir := assets.Require(t, assets.Golden("llama_tiny_meta"))
	gpath := assets.Golden("llama_tiny", "golden.safetensors")
	ids := goldenIDs(t, gpath)
	for _, c := range []struct{ file, golden, name string }{
		{"consolidated.00.pth", gpath, "logits"},
		{"consolidated_bf16.pth", filepath.Join(dir, "golden.safetensors"), "logits_bf16_weights"},
	} {
		m, err := Load(filepath.Join(dir, c.file), dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := runHidden(t, m, ids)
		want, _ := golden(t, c.golden, c.name)
		if d := assets.MaxAbsDiff(got, want); d > 1e-4 {
			t.Errorf("%s: logits differ from %s by %g", c.file, c.name, d)
		}
	}
	// The folder form (params.json + consolidated.NN.pth) finds consolidated.00.pth.
	m, err := Load(dir, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := runHidden(t, m, ids)
	want, _ := golden(t, gpath, "logits")
	if d := assets.MaxAbsDiff(got, want); d > 1e-4 {
		t.Errorf("Meta folder: logits differ by %g", d)
	}
}

func TestConcatShards(t *testing.T) {
	a := []float32{1, 2, 3, 4} // [2, 2]
	b := []float32{5, 6}       // [2, 1] or [1, 2]
	got, shape := concatShards([][]float32{a, b}, [][]int{{2, 2}, {2, 1}}, 1)
	if fmt.Sprint(got, shape) != "[1 2 5 3 4 6] [2 3]" {
		t.Errorf("columns: %v %v", got, shape)
	}
	got, shape = concatShards([][]float32{a, b}, [][]int{{2, 2}, {1, 2}}, 0)
	if fmt.Sprint(got, shape) != "[1 2 3 4 5 6] [3 2]" {
		t.Errorf("rows: %v %v", got, shape)
	}
}
