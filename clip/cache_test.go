package clip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/gomlx/compute/dtypes"
)

func TestDefaultLayers(t *testing.T) {
	for n, want := range map[int]string{24: "[8 16 24]", 12: "[4 8 12]", 4: "[1 2 4]", 32: "[10 21 32]", 2: "[1 2]", 1: "[1]"} {
		if got := fmt.Sprint(DefaultLayers(n)); got != want {
			t.Errorf("DefaultLayers(%d) = %s, want %s", n, got, want)
		}
	}
	if ls, err := ParseLayers("8, 16,24"); err != nil || fmt.Sprint(ls) != "[8 16 24]" {
		t.Errorf("ParseLayers: %v %v", ls, err)
	}
	if _, err := ParseLayers("8,x"); err == nil {
		t.Error("ParseLayers accepted junk")
	}
}

func TestCacheEntries(t *testing.T) {
	root := t.TempDir()
	key := CacheKey{Model: "m1", DType: "float32", Features: "layers=1,2", Preprocess: "p", M: 2, D: 3}
	c, err := OpenCache(root, key)
	if err != nil {
		t.Fatal(err)
	}
	img := ImageKey([]byte("some image bytes"))
	if _, ok, err := c.Get(img); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	feat := []float32{1, -2, 3.5, 4, 5e-7, -6}
	if err := c.Put(img, feat); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(img)
	if !ok || err != nil || fmt.Sprint(got) != fmt.Sprint(feat) {
		t.Fatalf("round trip: %v %v %v", got, ok, err)
	}
	if err := c.Put(img, feat[:5]); err == nil {
		t.Error("Put accepted a wrong length")
	}
	// Any change of the key is another folder: nothing is shared.
	for _, k2 := range []CacheKey{
		{Model: "m2", DType: "float32", Features: "layers=1,2", Preprocess: "p", M: 2, D: 3},
		{Model: "m1", DType: "bfloat16", Features: "layers=1,2", Preprocess: "p", M: 2, D: 3},
		{Model: "m1", DType: "float32", Features: "layers=1,3", Preprocess: "p", M: 2, D: 3},
		{Model: "m1", DType: "float32", Features: "layers=1,2", Preprocess: "q", M: 2, D: 3},
	} {
		c2, err := OpenCache(root, k2)
		if err != nil {
			t.Fatal(err)
		}
		if c2.Dir == c.Dir {
			t.Errorf("key %+v shares the folder of %+v", k2, key)
		}
		if _, ok, _ := c2.Get(img); ok {
			t.Errorf("key %+v reuses another key's entry", k2)
		}
	}
	// Corruptions: each is detected, reported, removed, and a miss.
	path := c.path(img)
	good, _ := os.ReadFile(path)
	corrupt := map[string]func([]byte) []byte{
		"flipped value byte": func(b []byte) []byte { b[headerSize+5] ^= 0x40; return b },
		"truncated":          func(b []byte) []byte { return b[:len(b)-3] },
		"extra bytes":        func(b []byte) []byte { return append(b, 0) },
		"other key digest":   func(b []byte) []byte { b[30] ^= 1; return b },
		"empty":              func(b []byte) []byte { return nil },
	}
	for name, f := range corrupt {
		b := f(append([]byte(nil), good...))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, ok, err := c.Get(img)
		var ce *CorruptError
		if ok || !errors.As(err, &ce) {
			t.Errorf("%s: ok=%v err=%v, want a CorruptError", name, ok, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: corrupt entry not removed", name)
		}
	}
	// No temporary files are left behind.
	filepath.Walk(c.Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func loadTiny(t testing.TB) *Model {
	t.Helper()
	m, err := Load(assets.Require(t, assets.Golden("clip_tiny")), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFeaturesGolden checks the multi-scale features against the golden hidden states: the class token of
// hidden_l, post-normed last layer = pooler_output, projected = image_embeds.
func TestFeaturesGolden(t *testing.T) {
	m := loadTiny(t)
	gpath := assets.Golden("clip_tiny", "golden.safetensors")
	px, shape := readGolden(t, gpath, "pixel_values")
	B, C := shape[0], m.Config.HiddenSize
	S := m.Config.SeqLen()
	enc, err := m.NewEncoder(device.MustShared(), FeatureOptions{Layers: []int{0, 2, 4, 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * 32 * 32
	feats, err := enc.Encode([][]float32{px[:n], px[n:]})
	if err != nil {
		t.Fatal(err)
	}
	for j, l := range []int{0, 2, 4, 1} {
		h, _ := readGolden(t, gpath, fmt.Sprintf("hidden_%d", l))
		for b := 0; b < B; b++ {
			want := h[b*S*C : b*S*C+C]
			if d := assets.MaxAbsDiff(feats[b][j*C:(j+1)*C], want); d > 1e-4 {
				t.Errorf("image %d layer %d: class token differs by %g", b, l, d)
			}
		}
	}
	for _, c := range []struct {
		opt  FeatureOptions
		name string
	}{
		{FeatureOptions{Layers: []int{4}, PostNorm: true}, "pooler_output"},
		{FeatureOptions{Layers: []int{4}, PostNorm: true, Project: true}, "image_embeds"},
	} {
		enc, err := m.NewEncoder(device.MustShared(), c.opt)
		if err != nil {
			t.Fatal(err)
		}
		feats, err := enc.Encode([][]float32{px[:n], px[n:]})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := readGolden(t, gpath, c.name)
		if d := assets.MaxAbsDiff(append(feats[0], feats[1]...), want); d > 1e-4 {
			t.Errorf("%s differs by %g", c.name, d)
		}
	}
	if _, err := m.NewEncoder(device.MustShared(), FeatureOptions{Layers: []int{5}}); err == nil {
		t.Error("layer 5 of 4 accepted")
	}
	if _, err := m.NewEncoder(device.MustShared(), FeatureOptions{Project: true}); err == nil {
		t.Error("projection without post-norm accepted")
	}
	def, _ := m.NewEncoder(device.MustShared(), FeatureOptions{})
	if fmt.Sprint(def.Options.Layers) != "[1 2 4]" || def.Dim() != 3*C {
		t.Errorf("default options %+v dim %d", def.Options, def.Dim())
	}
}

// TestExtractorCache runs the extractor twice over real images plus two bad files, then changes layers and
// model, and corrupts an entry.
func TestExtractorCache(t *testing.T) {
	m := loadTiny(t)
	paths := testImages(t)[:10]
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\n truncated"), 0o644)
	var srcs []ImageSource
	for i, p := range paths {
		srcs = append(srcs, ImageSource{Path: p})
		if i == 4 {
			srcs = append(srcs, ImageSource{Path: bad}, ImageSource{Name: "text", Data: []byte("hello")})
		}
	}
	cacheRoot := filepath.Join(dir, "cache")
	run := func(m *Model, opt FeatureOptions) (*Extractor, [][]float32) {
		t.Helper()
		enc, err := m.NewEncoder(device.MustShared(), opt)
		if err != nil {
			t.Fatal(err)
		}
		x, err := NewExtractor(enc, cacheRoot)
		if err != nil {
			t.Fatal(err)
		}
		x.BatchSize = 4
		calls := 0
		x.Progress = func(done, total int) { calls++ }
		feats, err := x.Features(srcs)
		var be *BatchError
		if !errors.As(err, &be) || len(be.Failed) != 2 || be.Failed[0].Name != bad || be.Failed[1].Name != "text" {
			t.Fatalf("want the two bad images reported, got %v", err)
		}
		if !strings.Contains(be.Failed[0].Error(), bad) {
			t.Errorf("error %q does not name %s", be.Failed[0], bad)
		}
		for i, f := range feats {
			isBad := srcs[i].Path == bad || srcs[i].Name == "text"
			if (f == nil) != isBad || (!isBad && len(f) != enc.Dim()) {
				t.Errorf("image %d (%s): %d features", i, srcs[i].Label(), len(f))
			}
		}
		if calls == 0 {
			t.Error("no progress reported")
		}
		return x, feats
	}
	x1, f1 := run(m, FeatureOptions{})
	if x1.Stats != (ExtractStats{Computed: 10, Failed: 2}) {
		t.Errorf("first run: %+v", x1.Stats)
	}
	// The extracted features are the encoder's on the preprocessed pixels (padding of the last batch included).
	px, err := m.Preprocess.File(srcs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := x1.Encoder.Encode([][]float32{px})
	if d := assets.MaxAbsDiff(direct[0], f1[0]); d > 1e-5 {
		t.Errorf("extractor features differ from a direct encode by %g", d)
	}
	x2, f2 := run(m, FeatureOptions{})
	if x2.Stats != (ExtractStats{Hits: 10, Failed: 2}) {
		t.Errorf("second run computed something: %+v", x2.Stats)
	}
	for i := range f1 {
		if assets.MaxAbsDiff(f1[i], f2[i]) != 0 && f1[i] != nil {
			t.Errorf("image %d: cached features differ", i)
		}
	}
	// Other layers: a new key, all recomputed.
	if x3, _ := run(m, FeatureOptions{Layers: []int{2, 4}}); x3.Stats.Computed != 10 {
		t.Errorf("changed layers reused features: %+v", x3.Stats)
	}
	// Another model (same architecture, other weights): recomputed.
	other, err := RandomWeights(m.Config, 7, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if other.WeightsHash == m.WeightsHash {
		t.Fatal("random weights have the golden model's hash")
	}
	if x4, _ := run(other, FeatureOptions{}); x4.Stats.Computed != 10 {
		t.Errorf("changed model reused features: %+v", x4.Stats)
	}
	// A corrupted entry is detected and recomputed to the same values.
	data, _ := os.ReadFile(paths[3])
	entry := x1.Cache.path(ImageKey(data))
	b, _ := os.ReadFile(entry)
	b[len(b)/2] ^= 0xff
	os.WriteFile(entry, b, 0o644)
	x5, f5 := run(m, FeatureOptions{})
	if x5.Stats != (ExtractStats{Hits: 9, Computed: 1, Corrupt: 1, Failed: 2}) {
		t.Errorf("after corruption: %+v", x5.Stats)
	}
	if d := assets.MaxAbsDiff(f5[3], f1[3]); d > 1e-5 {
		t.Errorf("recomputed entry differs by %g", d)
	}
}
