package llama

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// llama31Scaling is Llama-3.1-8B's published rope_scaling.
var llama31Scaling = RopeScaling{Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}

// TestLlama3InvFreqs checks the scaled inverse frequencies of Llama-3.1-8B (θ=500000, D=128) against values
// derived by hand (float64) from the published rule, in each band: high frequency (wavelength below 8192/4 = 2048
// positions) unchanged, low frequency (wavelength above 8192/1) divided by 8, and interpolated in between.
func TestLlama3InvFreqs(t *testing.T) {
	cfg := Config{HeadDim: 128, RopeTheta: 500000, RopeScaling: &llama31Scaling}
	got := cfg.invFreqs()
	if len(got) != 64 {
		t.Fatalf("%d frequencies, want 64", len(got))
	}
	for _, c := range []struct {
		j    int
		want float64
		band string
	}{
		{0, 1, "high"},
		{20, 1.6560440081e-02, "high"},
		{28, 3.2114459948e-03, "high (wavelength 1956.5)"},
		{29, 2.1665707635e-03, "mid (wavelength 2401.7, s=0.8036)"},
		{31, 8.5675141292e-04, "mid (s=0.4212)"},
		{34, 1.7850781277e-04, "mid (s=0.0745)"},
		{35, 9.5562123540e-05, "low (wavelength 8218.7): 7.6449698832e-04/8"},
		{63, 3.0689259889e-07, "low: 2.4551407911e-06/8"},
	} {
		if d := math.Abs(got[c.j]-c.want) / c.want; d > 1e-6 { // float32 rounding
			t.Errorf("inv_freq[%d] = %.10e, want %.10e (%s): relative error %.2g", c.j, got[c.j], c.want, c.band, d)
		}
	}
	// Every entry against the rule written out here, from HF's unscaled (float32) frequencies.
	plain := Config{HeadDim: 128, RopeTheta: 500000}.invFreqs()
	for j, f := range plain {
		lambda := 2 * math.Pi / f
		want := f
		switch {
		case lambda > 8192:
			want = f / 8
		case lambda >= 2048:
			s := (8192/lambda - 1) / 3
			want = (1-s)*f/8 + s*f
		}
		if d := math.Abs(got[j]-want) / want; d > 1e-6 {
			t.Errorf("inv_freq[%d] = %g, want %g", j, got[j], want)
		}
	}
}

// TestInvFreqsUnscaled checks that without scaling the frequencies are θ^(-2j/D) rounded to float32, as before
// scaling existed (the goldens depend on it bit for bit).
func TestInvFreqsUnscaled(t *testing.T) {
	cfg := Config{HeadDim: 8, RopeTheta: 10000}
	for j, f := range cfg.invFreqs() {
		if want := float64(float32(1 / math.Pow(10000, float64(2*j)/8))); f != want {
			t.Errorf("inv_freq[%d] = %v, want %v", j, f, want)
		}
	}
}

// llama31Config is the architecture part of Llama-3.1-8B's config.json.
const llama31Config = `{
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
  "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256
}`

func TestHFConfigRopeScaling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(llama31Config), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFromHF(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeScaling == nil || *c.RopeScaling != llama31Scaling {
		t.Fatalf("rope scaling %+v, want %+v", c.RopeScaling, llama31Scaling)
	}
	if c.RopeTheta != 500000 || c.NumKVHeads != 8 || c.HeadDim != 128 || c.MaxSeqLen != 131072 {
		t.Errorf("config %+v", c)
	}

	// transformers ≥ 5 writes rope_parameters, with rope_theta inside.
	v5 := strings.Replace(llama31Config, `"rope_theta": 500000.0,`, "", 1)
	v5 = strings.Replace(v5, `"rope_scaling": {`, `"rope_parameters": {"rope_theta": 500000.0, `, 1)
	c5, err := parseHFConfig([]byte(v5), "v5/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if c5.RopeScaling == nil || *c5.RopeScaling != llama31Scaling || c5.RopeTheta != 500000 {
		t.Errorf("rope_parameters: scaling %+v, theta %g", c5.RopeScaling, c5.RopeTheta)
	}

	plain := strings.Replace(llama31Config, `"rope_type": "llama3"}`, `"rope_type": "default"}`, 1)
	if c, err := parseHFConfig([]byte(plain), "default/config.json"); err != nil || c.RopeScaling != nil {
		t.Errorf("rope_type default: scaling %+v, err %v", c.RopeScaling, err)
	}

	for _, typ := range []string{`"rope_type": "linear"`, `"rope_type": "dynamic"`, `"rope_type": "yarn"`, `"type": "linear"`} {
		data := strings.Replace(llama31Config, `"rope_type": "llama3"`, typ, 1)
		_, err := parseHFConfig([]byte(data), "some/config.json")
		name := strings.Split(typ, `"`)[3]
		if err == nil || !strings.Contains(err.Error(), "some/config.json") || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%s: error %v should name the type and the file", typ, err)
		}
	}
	bad := strings.Replace(llama31Config, `"high_freq_factor": 4.0`, `"high_freq_factor": 0.5`, 1)
	if _, err := parseHFConfig([]byte(bad), "bad/config.json"); err == nil || !strings.Contains(err.Error(), "high_freq_factor") {
		t.Errorf("high_freq_factor below low_freq_factor: error %v", err)
	}
}
