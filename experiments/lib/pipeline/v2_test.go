package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/safetensors"
)

// TestAdapterVersionAndFusionFlags: -adapter and -fusion bind the adapter config, are in the run id (and its
// readable name) only when not the default, survive the config.json round trip, and bad values are refused.
func TestAdapterVersionAndFusionFlags(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		c := Stories260K()
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.Flags(fs)
		return c, fs.Parse(args)
	}
	id := func(c Config) string {
		t.Helper()
		s, err := c.ID()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	def := Stories260K()
	explicit, err := parse("-adapter-version", "v1", "-fusion", "all")
	if err != nil {
		t.Fatal(err)
	}
	if id(explicit) != id(def) {
		t.Errorf("-adapter-version v1 -fusion all changed the id: %s vs %s", id(explicit), id(def))
	}
	data, _ := json.Marshal(def)
	if strings.Contains(string(data), `"version"`) || strings.Contains(string(data), `"fusion"`) {
		t.Errorf("default config JSON records version/fusion: %s", data)
	}
	v2, err := parse("-adapter-version", "v2", "-fusion", "first", "-modality", "multimodal", "-clip", "random")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Adapter.Version != adapter.V2 || v2.Adapter.Fusion != "first" {
		t.Fatalf("flags did not bind: %+v", v2.Adapter)
	}
	if err := v2.Validate(); err != nil {
		t.Errorf("valid V2 config: %v", err)
	}
	if !strings.Contains(id(v2), "-multimodal-v2-L") {
		t.Errorf("V2 run id %s does not say v2", id(v2))
	}
	mm := v2
	mm.Adapter.Version, mm.Adapter.Fusion = "", ""
	onlyFusion := mm
	onlyFusion.Adapter.Fusion = "first"
	if ids := map[string]bool{id(v2): true, id(mm): true, id(onlyFusion): true}; len(ids) != 3 {
		t.Errorf("version and fusion do not both change the id: %s %s %s", id(v2), id(mm), id(onlyFusion))
	}
	data, _ = json.Marshal(v2)
	var back Config
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if id(back) != id(v2) || back.Adapter.Version != adapter.V2 || back.Adapter.Fusion != "first" {
		t.Errorf("round trip lost V2: %+v", back.Adapter)
	}
	if _, err := parse("-adapter-version", "v3"); err == nil {
		t.Error("-adapter v3 accepted")
	}
	bad, err := parse("-fusion", "9") // Stories260K adapts 5 layers
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `"9"`) {
		t.Errorf("-fusion 9 with L=5: %v", err)
	}
}

// TestV2RunAndReevaluate: a small stories260K run with -adapter-version v2 trains, scores by letter and by generation
// (the KV-cache decoder with the V2 head), records V2's parameter count, saves the V2 terms in its adapter file,
// and re-evaluating that file reproduces its accuracy.
func TestV2RunAndReevaluate(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Adapter.Version = adapter.V2
	cfg.Train.Epochs = 1
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	a, err := adapter.ReadConfig(filepath.Join(res.Dir, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != adapter.V2 {
		t.Errorf("run's adapter file has version %q", a.Version)
	}
	got := res.Summary.TrainableParams
	if !strings.Contains(res.Dir, "-v2-") {
		t.Errorf("run folder %s does not say v2", res.Dir)
	}
	f, err := safetensors.Open(filepath.Join(res.Dir, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	n := len(f.Names())
	f.Close()
	if n != 2+19 {
		t.Errorf("V2 run's adapter file holds %d tensors, want 21", n)
	}
	// stories260K: N=5, C=64, H=8, KVH=4, D=8, F=172, V=512, L=5, K=10 (the preset's).
	const C, F, V, N, qd, kvd = 64, 172, 512, 5, 64, 32
	wantV2 := 2*(N*(qd+2*kvd+C+2*F+C)+V) + (2*N+1)*C
	if want := int64(5*10*C + 5*8 + wantV2); got != want {
		t.Errorf("trainable params %d, want %d (V1 %d + V2 %d)", got, want, 5*10*C+5*8, wantV2)
	}
	s, err := Evaluate(context.Background(), cfg, res.Dir, filepath.Join(t.TempDir(), "eval"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if s.PrimaryAccuracy()["Avg"] != res.Summary.PrimaryAccuracy()["Avg"] {
		t.Errorf("re-evaluation %v, run %v", s.PrimaryAccuracy()["Avg"], res.Summary.PrimaryAccuracy()["Avg"])
	}
}
