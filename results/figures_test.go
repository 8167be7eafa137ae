package results

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkPNG decodes path as PNG, checks its size and that it is not blank, and returns the image.
func checkPNG(t *testing.T, path string, wantW, wantH int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s: %dx%d, want %dx%d", path, b.Dx(), b.Dy(), wantW, wantH)
	}
	// A drawn plot has many distinct colors (lines, antialiased text) and mostly white background.
	colors := map[[4]uint32]bool{}
	white := 0
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bl, a}] = true
			if r == 0xffff && g == 0xffff && bl == 0xffff {
				white++
			}
		}
	}
	samples := (b.Dx() / 3) * (b.Dy() / 3)
	if len(colors) < 10 || white < samples/2 || white == samples {
		t.Errorf("%s looks blank or garbled: %d colors, %d of %d samples white", path, len(colors), white, samples)
	}
	return img
}

// checkSVG parses path as XML with an <svg> root and returns its text content.
func checkSVG(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var root string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: invalid XML: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", path, root)
	}
	return text.String()
}

// syntheticMetrics is a run of 3 epochs × 4 steps with an epoch line (train and val loss) per epoch.
func syntheticMetrics() []Metric {
	var ms []Metric
	step := 0
	for e := 1; e <= 3; e++ {
		sum := 0.0
		for s := 0; s < 4; s++ {
			step++
			loss := 3 * math.Exp(-float64(step)/5)
			sum += loss
			ms = append(ms, Metric{Kind: KindStep, Step: Int(step), Epoch: Float(float64(step) / 4), Loss: Float(loss)})
		}
		ms = append(ms, Metric{Kind: KindEpoch, Step: Int(step), Epoch: Float(float64(e)), Loss: Float(sum / 4),
			ValLoss: Float(sum/4 + 0.2), ValAcc: Float(40 + 10*float64(e))})
	}
	return ms
}

func TestLossCurve(t *testing.T) {
	dir := t.TempDir()
	fig, err := LossCurve("run tiny-1: loss", syntheticMetrics())
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "loss")
	if err := fig.Save(base); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, base+".png", 975, 675) // 6.5 × 4.5 in at 150 dpi
	text := checkSVG(t, base+".svg")
	for _, want := range []string{"run tiny-1: loss", "epoch", "loss", "train loss (step)", "train loss (epoch mean)", "val loss"} {
		if !strings.Contains(text, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) != 2 {
		t.Errorf("%d files (%v), want loss.png and loss.svg only", len(es), err)
	}
	// Without epochs the x axis is the step.
	fig, err = LossCurve("by step", []Metric{{Step: Int(1), Loss: Float(2)}, {Step: Int(2), Loss: Float(1)}})
	if err != nil {
		t.Fatal(err)
	}
	svg, err := fig.Encode("svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte(">step<")) {
		t.Error("x axis is not labeled step")
	}
	if _, err := LossCurve("empty", []Metric{{Step: Int(1), LR: Float(1)}}); err == nil {
		t.Error("a loss curve without losses was drawn")
	}
	if _, err := fig.Encode("gif"); err == nil {
		t.Error("unsupported format accepted")
	}
}

func TestEpochLosses(t *testing.T) {
	ms := syntheticMetrics()
	// A resumed run logs epoch 2 again; the last line wins. Epoch 4 is missing before epoch 5.
	ms = append(ms, Metric{Kind: KindEpoch, Epoch: Float(2), Loss: Float(0.5)},
		Metric{Kind: KindEpoch, Epoch: Float(5), Loss: Float(0.25)})
	got := EpochLosses(ms)
	if len(got) != 5 || got[1] != 0.5 || got[4] != 0.25 || !math.IsNaN(got[3]) {
		t.Fatalf("EpochLosses = %v", got)
	}
	want0 := 0.0
	for s := 1; s <= 4; s++ {
		want0 += 3 * math.Exp(-float64(s)/5) / 4
	}
	if math.Abs(got[0]-want0) > 1e-12 {
		t.Errorf("epoch 1 loss %v, want %v", got[0], want0)
	}
}

func TestFigure5(t *testing.T) {
	curve := func(scale float64, seed float64) []float64 {
		var r []float64
		for e := 1; e <= 10; e++ {
			r = append(r, scale*math.Exp(-float64(e)/3)+0.05*seed)
		}
		return r
	}
	fig, err := Figure5("", []Curve{
		{Label: "zero-init attention", Runs: [][]float64{curve(2, 0), curve(2, 1), curve(2, 2)}},
		{Label: "rand-init attention", Runs: [][]float64{curve(3, 0), curve(3, 1), append(curve(3, 2)[:8], math.NaN())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "figure5")
	if err := fig.Save(base); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, base+".png", 975, 675)
	text := checkSVG(t, base+".svg")
	for _, want := range []string{"zero-init attention (mean of 3 seeds", "rand-init attention", "train loss", "epoch"} {
		if !strings.Contains(text, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	// One seed: no band, plain label.
	if _, err := Figure5("one seed", []Curve{{Label: "zero", Runs: [][]float64{curve(1, 0)}}}); err != nil {
		t.Error(err)
	}
	if _, err := Figure5("x", []Curve{{Label: "empty"}}); err == nil {
		t.Error("a curve without values was drawn")
	}
}

func TestLayersFigure(t *testing.T) {
	rows := []LayersResult{
		{Layers: 5, ValAcc: Single(Float(62)), TrainLoss: Single(Float(0.3)), ValLoss: Single(Float(0.5)), PaperLayers: 30},
		{Layers: 1, ValAcc: Single(Float(45)), TrainLoss: Single(Float(0.9)), ValLoss: Single(Float(1.1)), PaperLayers: 10},
		{Layers: 3, ValAcc: Single(Float(55)), TrainLoss: Single(Float(0.5)), ValLoss: Single(Float(0.7)), PaperLayers: 20},
	}
	fig, err := LayersFigure(rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(fig.Plots) != 2 {
		t.Fatalf("%d panels, want 2", len(fig.Plots))
	}
	base := filepath.Join(t.TempDir(), "layers")
	if err := fig.Save(base); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, base+".png", 1950, 675)
	text := checkSVG(t, base+".svg")
	for _, want := range []string{"Val accuracy vs adapted layers", "Final loss vs adapted layers", "adapted layers L", "measured", "paper", "val loss"} {
		if !strings.Contains(text, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	// Accuracy only: one panel.
	fig, err = LayersFigure([]LayersResult{{Layers: 10, ValAcc: Single(Float(50))}})
	if err != nil || len(fig.Plots) != 1 {
		t.Errorf("accuracy-only figure: %v panels, %v", fig, err)
	}
	if _, err := LayersFigure(nil); err == nil {
		t.Error("an empty layers figure was drawn")
	}
}
