package clip

import (
	"math"
	"os"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/safetensors"
)

func diffStats(a, b []float32) (maxAbs, meanAbs float64) {
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		maxAbs = math.Max(maxAbs, d)
		meanAbs += d
	}
	return maxAbs, meanAbs / float64(len(a))
}

func TestGoldenPreprocess(t *testing.T) {
	dir := assets.Require(t, assets.Golden("clip_preprocess"))
	g, err := safetensors.Open(dir + "/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p := DefaultPreprocess()
	for _, name := range []string{"landscape_320x240", "portrait_200x300"} {
		data, err := os.ReadFile(dir + "/" + name + ".png")
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.File(ImageSource{Name: name, Data: data}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{name, name + "_pil"} {
			want, _, err := g.ReadFloat32(ref)
			if err != nil {
				t.Fatal(err)
			}
			mx, mean := diffStats(got, want)
			t.Logf("%s: max %.3g mean %.3g", ref, mx, mean)
		}
	}
}
