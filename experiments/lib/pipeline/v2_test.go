package pipeline

import (
	"encoding/json"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
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
	def := Stories260K()
	explicit, err := parse("-adapter", "v1", "-fusion", "all")
	if err != nil {
		t.Fatal(err)
	}
	if explicit.ID() != def.ID() {
		t.Errorf("-adapter v1 -fusion all changed the id: %s vs %s", explicit.ID(), def.ID())
	}
	data, _ := json.Marshal(def)
	if strings.Contains(string(data), `"adapter"`) || strings.Contains(string(data), `"fusion"`) {
		t.Errorf("default config JSON records adapter/fusion: %s", data)
	}
	v2, err := parse("-adapter", "v2", "-fusion", "first", "-modality", "multimodal", "-clip", "random")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Adapter.Version != adapter.V2 || v2.Adapter.Fusion != "first" {
		t.Fatalf("flags did not bind: %+v", v2.Adapter)
	}
	if err := v2.Validate(); err != nil {
		t.Errorf("valid V2 config: %v", err)
	}
	if !strings.Contains(v2.ID(), "-multimodal-v2-L") {
		t.Errorf("V2 run id %s does not say v2", v2.ID())
	}
	mm := v2
	mm.Adapter.Version, mm.Adapter.Fusion = "", ""
	onlyFusion := mm
	onlyFusion.Adapter.Fusion = "first"
	if ids := map[string]bool{v2.ID(): true, mm.ID(): true, onlyFusion.ID(): true}; len(ids) != 3 {
		t.Errorf("version and fusion do not both change the id: %s %s %s", v2.ID(), mm.ID(), onlyFusion.ID())
	}
	data, _ = json.Marshal(v2)
	var back Config
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID() != v2.ID() || back.Adapter.Version != adapter.V2 || back.Adapter.Fusion != "first" {
		t.Errorf("round trip lost V2: %+v", back.Adapter)
	}
	if _, err := parse("-adapter", "v3"); err == nil {
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
