package main

import (
	"math"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/gguf"
	"github.com/adapterlab/llama-adapter/models/llama"
)

// The 7B figure was enumerated by hand, matmul by matmul: forward 13,487,505,408 (32 layers of q/k/v/o and SwiGLU,
// QKᵀ and PV over 512 keys, 10 prompt keys in 30 layers, LM head), backward 12,636,782,592 (activation gradients
// of the top 30 layers and the LM head, attention twice the forward, none for the lowest adapted layer's input).
func TestTrainFLOPsPerToken7B(t *testing.T) {
	got := TrainFLOPsPerToken(llama.Presets["7b"], 30, 10, 512)
	if want := 26124288000.0; math.Abs(got-want) > 1 {
		t.Fatalf("7B K=10 L=30 S=512: %.0f FLOPs/token, want %.0f", got, want)
	}
	// No adapted layer: the forward pass only, 2 FLOPs per matmul weight plus attention.
	cfg := llama.Presets["tiny"]
	embed := float64(cfg.VocabSize * cfg.Dim)
	weights := float64(cfg.NumParams()) - embed - float64(cfg.NumLayers*2*cfg.Dim+cfg.Dim) // less norms
	if !cfg.TieEmbeddings {
		weights -= embed // NumParams counts the LM head; the embedding table is a lookup
	}
	fwd := 2*(weights+embed) + float64(cfg.NumLayers)*4*64*float64(cfg.QDim())
	if got := TrainFLOPsPerToken(cfg, 0, 10, 64); math.Abs(got-fwd) > 1 {
		t.Fatalf("tiny, L=0: %.0f, want the forward pass %.0f", got, fwd)
	}
}

// A full bench run on the tiny preset: every measure is produced and positive.
func TestBenchTiny(t *testing.T) {
	res, err := Bench(Options{Preset: "tiny", Batch: 2, Seq: 32, K: 4, L: 2, Gate: "head-tanh", Steps: 2, Warmup: 1,
		EvalBatches: 1, GenBatch: 1, GenPrompt: 4, GenTokens: 4, Only: "all", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.TrainTokensSec <= 0 || res.EvalExamplesS <= 0 || res.GenTokensSec <= 0 || res.TrainTFLOPS <= 0 {
		t.Fatalf("missing measures: %+v", res)
	}
	if res.Options.Layers != llama.Presets["tiny"].NumLayers || res.AdapterParams == 0 {
		t.Fatalf("options not resolved: %+v", res.Options)
	}
}

// The smollm2 preset is the installed SmolLM2 GGUF's shape (skipped when the model is not installed).
func TestSmolLM2PresetMatchesModel(t *testing.T) {
	path, err := assets.InstalledModel(assets.SmolLM2)
	if err != nil {
		t.Skipf("SmolLM2 not installed: %v", err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := llama.ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := Preset("smollm2")
	if !ok {
		t.Fatal("no smollm2 preset")
	}
	// The GGUF stores ε as float32.
	if math.Abs(got.NormEps-want.NormEps) < 1e-6*want.NormEps {
		got.NormEps = want.NormEps
	}
	if got != want {
		t.Errorf("%s has shape\n%+v\nthe smollm2 preset\n%+v", path, got, want)
	}
}
