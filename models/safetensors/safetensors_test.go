package safetensors

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
)

func TestRoundTripDTypes(t *testing.T) {
	dir := t.TempDir()
	vals := []float32{0, 1, -2.5, 3.14159, 1e-3, -65504, 0.1}
	var ts []Tensor
	for _, dt := range []string{F32, F16, BF16} {
		ts = append(ts, Float32Tensor("x_"+dt, []int{7}, vals, dt))
	}
	ts = append(ts, Tensor{Name: "ids", DType: I64, Shape: []int{2}, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
	path := filepath.Join(dir, "a.safetensors")
	if err := Write(path, ts, map[string]string{"format": "pt", "k": "v"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o644 {
		t.Errorf("written file has mode %v, want 0644", st.Mode().Perm())
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["k"] != "v" {
		t.Errorf("metadata lost: %v", f.Metadata)
	}
	for _, dt := range []string{F32, F16, BF16} {
		got, shape, err := f.ReadFloat32("x_" + dt)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != 1 || shape[0] != 7 {
			t.Fatalf("shape %v", shape)
		}
		for i, v := range vals {
			want := v
			switch dt {
			case F16:
				want = float16.FromFloat32(v).Float32()
			case BF16:
				want = bfloat16.FromFloat32(v).Float32()
			}
			if got[i] != want {
				t.Errorf("%s[%d] = %v, want %v", dt, i, got[i], want)
			}
		}
	}
	ids, _, err := f.ReadInt64("ids")
	if err != nil || ids[0] != 1 || ids[1] != -1 {
		t.Errorf("ids = %v, %v", ids, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestShardedIndex(t *testing.T) {
	dir := t.TempDir()
	a := Float32Tensor("a", []int{2, 2}, []float32{1, 2, 3, 4}, F32)
	b := Float32Tensor("b", []int{3}, []float32{5, 6, 7}, BF16)
	if err := Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), []Tensor{a}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), []Tensor{b}, nil); err != nil {
		t.Fatal(err)
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": map[string]string{
		"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
	if err := os.WriteFile(filepath.Join(dir, IndexFile), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := strings.Join(s.Names(), ","); got != "a,b" {
		t.Errorf("names %q", got)
	}
	v, _, err := s.ReadFloat32("b")
	if err != nil || v[2] != 7 {
		t.Errorf("b = %v, %v", v, err)
	}
	if _, _, err := s.ReadFloat32("c"); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("missing tensor error = %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := Write(path, []Tensor{Float32Tensor("w", []int{64, 64}, make([]float32, 4096), F32)}, nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	trunc := filepath.Join(dir, "trunc.safetensors")
	os.WriteFile(trunc, data[:len(data)-100], 0o644)
	if _, err := Open(trunc); err == nil || !strings.Contains(err.Error(), "trunc.safetensors") || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated file: err = %v", err)
	}
	short := filepath.Join(dir, "short.safetensors")
	os.WriteFile(short, data[:5], 0o644)
	if _, err := Open(short); err == nil || !strings.Contains(err.Error(), "short.safetensors") {
		t.Errorf("short file: err = %v", err)
	}
	garbage := filepath.Join(dir, "garbage.safetensors")
	os.WriteFile(garbage, append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, []byte("{{{{xxxxxx")...), 0o644)
	if _, err := Open(garbage); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("garbage header: err = %v", err)
	}
}

// TestGoldenLlamaTiny reads the HF-saved tiny LLaMA and checks a few tensors' shapes and finiteness.
func TestGoldenLlamaTiny(t *testing.T) {
	path := assets.Require(t, assets.Golden("llama_tiny", "model.safetensors"))
	s, err := OpenModel(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info, _, ok := s.Info("model.embed_tokens.weight")
	if !ok || info.Shape[0] != 256 || info.Shape[1] != 64 {
		t.Fatalf("embed_tokens info %+v ok=%v", info, ok)
	}
	v, _, err := s.ReadFloat32("model.embed_tokens.weight")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatal("non-finite weight")
		}
	}
}
