package adapter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/safetensors"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestV1FilesByteCompatible re-saves every committed run's V1 adapter file and compares its header (config JSON
// byte for byte inside it, tensor names, shapes, offsets) and its data bytes: the V2 fields (omitempty) leave V1
// configs, tensor lists and files as they were.
func TestV1FilesByteCompatible(t *testing.T) {
	paths, _ := filepath.Glob("../results/runs/*/adapter.safetensors")
	if len(paths) == 0 {
		t.Skip("no committed run adapter files")
	}
	for _, path := range paths {
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, fs, err := readMeta(f)
		meta := f.Metadata
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Version != V1 || cfg.Fusion != "" {
			continue
		}
		m := llama.Config{NumLayers: fs.NumLayers, Dim: fs.Dim, NumHeads: fs.NumHeads}
		a, err := Load(path, model.NewStore(), m)
		if err != nil {
			t.Fatal(err)
		}
		extra := map[string]string{}
		for k, v := range meta {
			if k != "__sha256__" { // written by safetensors.Write itself
				extra[k] = v
			}
		}
		out := filepath.Join(t.TempDir(), "adapter.safetensors")
		if err := a.Save(out, extra); err != nil {
			t.Fatal(err)
		}
		wantHeader, wantData := splitSafetensors(t, path)
		gotHeader, gotData := splitSafetensors(t, out)
		if !bytes.Equal(gotData, wantData) || !reflect.DeepEqual(gotHeader, wantHeader) {
			t.Errorf("%s: re-saved file differs:\n%v\n%v", path, gotHeader, wantHeader)
		}
	}
}

// splitSafetensors returns a file's parsed header, less the checksum that files written before it existed lack
// (safetensors.Write added "__sha256__" after the committed runs were saved), and its data bytes.
func splitSafetensors(t *testing.T, path string) (map[string]any, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var h map[string]any
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	if meta, ok := h["__metadata__"].(map[string]any); ok {
		delete(meta, "__sha256__")
	}
	return h, b[8+n:]
}

// TestV2SaveLoad round-trips a V2 adapter with non-trivial terms through the project's file, and checks that a
// model the V2 tensors do not fit gives an error naming the tensor.
func TestV2SaveLoad(t *testing.T) {
	m := loadTiny(t)
	a := v2Tiny(t, m, "first", true)
	cfgJSON, _ := json.Marshal(a.Config)
	if !strings.Contains(string(cfgJSON), `"version":"v2","fusion":"first"`) {
		t.Errorf("V2 config JSON %s lacks version/fusion", cfgJSON)
	}
	path := filepath.Join(t.TempDir(), "adapter.safetensors")
	if err := a.Save(path, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Names()); n != 2+19 {
		t.Errorf("V2 file holds %d tensors, want 2 + 19", n)
	}
	f.Close()
	m2 := loadTiny(t)
	b, err := Load(path, m2.Store, m2.Config)
	if err != nil {
		t.Fatal(err)
	}
	if b.V2 == nil || b.Config.Fusion != "first" {
		t.Fatalf("loaded config %+v lost V2 or fusion", b.Config)
	}
	sameVariables(t, a, b, "V2 save/load")
	// The golden terms are not the identity start, so the round trip compared real values.
	names, vals, err := b.v2HF()
	if err != nil {
		t.Fatal(err)
	}
	gold := openGolden(t, "adapter_v2_tiny", "adapter_v2.safetensors")
	for i, name := range names {
		want, _ := gold.f32(name)
		for k := range want {
			if vals[i][k] != want[k] {
				t.Fatalf("%s[%d] = %g after load, golden %g", name, k, vals[i][k], want[k])
			}
		}
	}
	// A model whose MLP is wider: the gate projection's terms no longer fit.
	m3 := loadTiny(t)
	wide := m3.Config
	wide.HiddenDim = 200
	_, err = Load(path, m3.Store, wide)
	if err == nil || !strings.Contains(err.Error(), "v2.mlp.gate_proj.bias") || !strings.Contains(err.Error(), "adapter.safetensors") {
		t.Errorf("load into F=200: error %v should name the file and the tensor v2.mlp.gate_proj.bias", err)
	}
	// A V2 file missing a tensor.
	var ts []safetensors.Tensor
	for i, v := range a.Variables() {
		if name := a.tensorNames()[i]; name != "v2.lm_head.scale" {
			ts = append(ts, safetensors.Float32Tensor(name, v.Shape().Dimensions, tensors.MustCopyFlatData[float32](v.MustValue()), safetensors.F32))
		}
	}
	f, _ = safetensors.Open(path)
	meta := f.Metadata
	delete(meta, "__sha256__")
	f.Close()
	short := filepath.Join(t.TempDir(), "short.safetensors")
	if err := safetensors.Write(short, ts, meta); err != nil {
		t.Fatal(err)
	}
	m4 := loadTiny(t)
	if _, err := Load(short, m4.Store, m4.Config); err == nil || !strings.Contains(err.Error(), "v2.lm_head.scale") {
		t.Errorf("load without v2.lm_head.scale: error %v should name it", err)
	}
	// The official v1 layout cannot hold V2.
	if err := a.ExportOfficial(filepath.Join(t.TempDir(), "x.pth")); err == nil {
		t.Error("ExportOfficial of a V2 adapter succeeded")
	}
	// Bad version/fusion values are refused with their value named.
	for _, c := range []Config{{Layers: 2, PromptLen: 4, Version: "v3"}, {Layers: 2, PromptLen: 4, Fusion: "3"}, {Layers: 2, PromptLen: 4, Fusion: "early"}} {
		if _, err := New(model.NewStore(), c, m.Config); err == nil || (!strings.Contains(err.Error(), "v3") && !strings.Contains(err.Error(), c.Fusion)) {
			t.Errorf("config %+v: error %v", c, err)
		}
	}
	// "v1" and "all" are V1's defaults and keep V1's JSON.
	j1, _ := json.Marshal(Config{Layers: 2, PromptLen: 4, Version: "v1", Fusion: "all"}.Defaults())
	j0, _ := json.Marshal(Config{Layers: 2, PromptLen: 4}.Defaults())
	if string(j1) != string(j0) {
		t.Errorf("explicit v1/all config %s differs from the default %s", j1, j0)
	}
}
