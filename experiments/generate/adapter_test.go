package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline/pipelinetest"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func storiesPath(t *testing.T) string {
	return assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
}

// saveAdapter writes a new adapter for a model of config mc to dir/adapter.safetensors.
func saveAdapter(t *testing.T, dir string, cfg adapter.Config, mc llama.Config) string {
	t.Helper()
	a, err := adapter.New(model.NewStore(), cfg, mc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, pipeline.AdapterFile)
	if err := a.Save(path, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

func storiesConfig(t *testing.T) llama.Config {
	m, err := llama.Load(storiesPath(t), dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	return m.Config
}

// runFolder makes a run folder for stories260K: config.json (the stories260K preset with the given changes and the
// model's digest, or modelDigest when not "") and an adapter of config cfg.
func runFolder(t *testing.T, cfg adapter.Config, change func(c *pipeline.Config), modelDigest string) string {
	t.Helper()
	c := pipelinetest.Stories260K(t)
	if change != nil {
		change(&c)
	}
	return pipelinetest.RunFolder(t, cfg, c, modelDigest)
}

// generateText runs the command on the prompt "Once upon a time" for 48 steps with args added: stdout, stderr and
// the error.
func generateText(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(append([]string{"-prompt", "Once upon a time", "-steps", "48"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustGenerate is generateText failing the test, with stderr, when the command fails.
func mustGenerate(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, err := generateText(t, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut)
	}
	return out, errOut
}

// TestAdapterZeroGateIsBase: generation with a zero-gate adapter prints the base model's text; a random-gate
// adapter changes it, with and without the KV cache alike.
func TestAdapterZeroGateIsBase(t *testing.T) {
	mc := storiesConfig(t)
	zero := saveAdapter(t, t.TempDir(), adapter.Config{Layers: 3, PromptLen: 5, Init: adapter.InitZero}, mc)
	random := saveAdapter(t, t.TempDir(), adapter.Config{Layers: 3, PromptLen: 5, Init: adapter.InitRandom, Seed: 11}, mc)
	base, _ := mustGenerate(t)
	got, errOut := mustGenerate(t, "-adapter", zero)
	if got != base {
		t.Errorf("zero-gate adapter:\n%q\nbase model:\n%q", got, base)
	}
	if !strings.Contains(errOut, "adapter: "+zero) {
		t.Errorf("stderr does not describe the adapter:\n%s", errOut)
	}
	cached, _ := mustGenerate(t, "-adapter", random)
	uncached, _ := mustGenerate(t, "-adapter", random, "-no-cache")
	if cached == base {
		t.Error("the random adapter did not change the text")
	}
	if cached != uncached {
		t.Errorf("random adapter, KV cache:\n%q\nfull recompute:\n%q", cached, uncached)
	}
}

// TestAdapterRunFolder: a run folder's recorded settings apply, a contradicting flag is reported, and a model
// other than the recorded one (by digest) is refused.
func TestAdapterRunFolder(t *testing.T) {
	ac := adapter.Config{Layers: 2, PromptLen: 3, Init: adapter.InitRandom, Seed: 5}
	dir := runFolder(t, ac, nil, "")
	file, _ := mustGenerate(t, "-adapter", filepath.Join(dir, pipeline.AdapterFile))
	folder, errOut := mustGenerate(t, "-adapter", dir)
	if folder != file {
		t.Errorf("run folder and its adapter file generate differently:\n%q\n%q", folder, file)
	}
	if strings.Contains(errOut, "overrides") {
		t.Errorf("no flag was given, yet a conflict is reported:\n%s", errOut)
	}
	_, errOut = mustGenerate(t, "-adapter", dir, "-dtype", "bfloat16")
	if !strings.Contains(errOut, "-dtype bfloat16 overrides the run's recorded float32") {
		t.Errorf("the -dtype conflict is not reported:\n%s", errOut)
	}
	bad := runFolder(t, ac, nil, "sha256:0000")
	if _, _, err := generateText(t, "-adapter", bad); err == nil || !strings.Contains(err.Error(), "was trained on model") {
		t.Errorf("a run folder recorded with another model: err = %v", err)
	}
}

// TestAdapterModelMismatch: an adapter made for a model of another shape is refused with the shapes named.
func TestAdapterModelMismatch(t *testing.T) {
	mc := storiesConfig(t)
	for name, c := range map[string]struct {
		change func(c *llama.Config)
		want   string // the loader names the shape that differs (adapter.Load checks the file's metadata)
	}{
		"layers": {func(c *llama.Config) { c.NumLayers++ }, fmt.Sprintf("this model has %d layers", mc.NumLayers)},
		"width":  {func(c *llama.Config) { c.Dim *= 2 }, fmt.Sprintf("this model has C=%d", mc.Dim)},
		"heads":  {func(c *llama.Config) { c.NumHeads *= 2; c.HeadDim /= 2 }, fmt.Sprintf("this model has %d heads", mc.NumHeads)},
	} {
		other := mc
		c.change(&other)
		path := saveAdapter(t, t.TempDir(), adapter.Config{Layers: 2, PromptLen: 3}, other)
		_, _, err := generateText(t, "-adapter", path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: adapter for another model shape: err = %v, want it to say %q", name, err, c.want)
		}
	}
}

func writePNG(t *testing.T, path string, c func(x, y int) color.NRGBA) {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.SetNRGBA(x, y, c(x, y))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestAdapterImage: a multimodal run folder (random-weight vision tower, random projection): -image computes the
// features with the run's tower and layers, and the prompts' keys (the visual token added to each prompt) differ
// between two images and from no image; the whole command runs with it.
func TestAdapterImage(t *testing.T) {
	ac := adapter.Config{Layers: 2, PromptLen: 3, Init: adapter.InitRandom, Seed: 5,
		Visual: &adapter.VisualConfig{Scales: 3, FeatureDim: 128}} // pipeline's random ViT: 3 layers of width 128
	dir := runFolder(t, ac, func(c *pipeline.Config) {
		c.Vision.Modality, c.Vision.CLIP, c.Seed = pipeline.Multimodal, "random", 3
	}, "")
	tmp := t.TempDir()
	imgA, imgB := filepath.Join(tmp, "a.png"), filepath.Join(tmp, "b.png")
	writePNG(t, imgA, func(x, y int) color.NRGBA { return color.NRGBA{uint8(4 * x), uint8(5 * y), 30, 255} })
	writePNG(t, imgB, func(x, y int) color.NRGBA { return color.NRGBA{200, uint8(3 * (x + y)), uint8(7 * x), 255} })
	keys := func(image string) []float32 {
		t.Helper()
		o := adapterOptions{path: dir, image: image}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		mp, tp, dt := storiesPath(t), "", device.Float32
		if err := o.runDefaults(fs, &mp, &tp, &dt, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if o.vision.Vision.CLIP != "random" || o.vision.Seed != 3 {
			t.Fatalf("the run's vision tower was not taken: %+v, seed %d", o.vision.Vision, o.vision.Seed)
		}
		m, err := llama.Load(mp, dt.GoMLX()) // a fresh store per adapter
		if err != nil {
			t.Fatal(err)
		}
		la, err := o.open(m, mp, device.MustShared(), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](la.kv[0])
	}
	a, b, none := keys(imgA), keys(imgB), keys("")
	if d := assets.MaxAbsDiff(a, b); d < 1e-4 {
		t.Errorf("two images give prompt keys %g apart", d)
	}
	if d := assets.MaxAbsDiff(a, none); d < 1e-4 {
		t.Errorf("an image and no image give prompt keys %g apart", d)
	}
	if again := keys(imgA); assets.MaxAbsDiff(a, again) != 0 {
		t.Error("the same image gives other prompt keys")
	}
	out, errOut := mustGenerate(t, "-adapter", dir, "-image", imgA)
	if !strings.HasPrefix(out, "Once upon a time") || !strings.Contains(errOut, "vision tower: random-weight ViT") {
		t.Errorf("-image run:\nstdout %q\nstderr %s", out, errOut)
	}
	text := saveAdapter(t, t.TempDir(), adapter.Config{Layers: 2, PromptLen: 3}, storiesConfig(t))
	if _, _, err := generateText(t, "-adapter", text, "-image", imgA); err == nil || !strings.Contains(err.Error(), "no visual projection") {
		t.Errorf("-image with a text-only adapter: err = %v", err)
	}
}
