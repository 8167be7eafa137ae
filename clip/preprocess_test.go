package clip

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/safetensors"
)

func diffStats(a, b []float32) (maxAbs, meanAbs float64, differing int) {
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		maxAbs = math.Max(maxAbs, d)
		meanAbs += d
		if d > 1e-3 {
			differing++
		}
	}
	return maxAbs, meanAbs / float64(len(a)), differing
}

// oneLevel is one 8-bit step after normalization by the smallest std (the largest possible single-level error).
const oneLevel = 1.0 / 255 / 0.26130258

func TestGoldenPreprocess(t *testing.T) {
	dir := assets.Require(t, assets.Golden("clip_preprocess"))
	g, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p := DefaultPreprocess()
	// Bounds (measured, see README): against PIL by hand the pixels are identical up to float32 rounding of the
	// normalization; against CLIPImageProcessor (transformers 5.17) a few values differ by one 8-bit level.
	type bound struct {
		maxAbs, meanAbs float64
		maxDiffering    int
	}
	cases := []struct {
		name string
		ref  string
		// pilSize reproduces the hand-made reference's rounding of the long side (round, not floor).
		pilSize  bool
		want     bound
		measured string
	}{
		{"landscape_320x240", "landscape_320x240", false, bound{oneLevel + 1e-5, 2e-5, 100}, "max 0.0146 mean 6.3e-06, 66 of 150528 values one level off"},
		{"landscape_320x240", "landscape_320x240_pil", true, bound{1e-6, 1e-7, 0}, "max 2.4e-07 mean 4.8e-08"},
		{"portrait_200x300", "portrait_200x300", false, bound{oneLevel + 1e-5, 1e-4, 1000}, "max 0.0146 mean 6.6e-05, 688 values one level off"},
		{"portrait_200x300", "portrait_200x300_pil", false, bound{1e-6, 1e-7, 0}, "max 2.4e-07 mean 4.4e-08"},
	}
	for _, c := range cases {
		data, err := os.ReadFile(filepath.Join(dir, c.name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := DecodeRGB(data)
		if err != nil {
			t.Fatal(err)
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		nw, nh := ResizedSize(w, h, p.Size)
		if c.pilSize { // the hand-made reference rounds the long side: round(320·224/240) = 299, not 298
			nw, nh = max(224, int(math.Round(float64(w)*224/float64(min(w, h))))), max(224, int(math.Round(float64(h)*224/float64(min(w, h)))))
		}
		got := p.applySized(img, nw, nh, nil)
		want, shape, err := g.ReadFloat32(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != 3 || shape[0] != 3 || shape[1] != 224 || shape[2] != 224 {
			t.Fatalf("%s: golden shape %v", c.ref, shape)
		}
		mx, mean, n := diffStats(got, want)
		t.Logf("%s (resized to %dx%d): max |diff| %.3g, mean %.3g, %d of %d values differ by > 1e-3 (was: %s)",
			c.ref, nw, nh, mx, mean, n, len(got), c.measured)
		if mx > c.want.maxAbs || mean > c.want.meanAbs || n > c.want.maxDiffering {
			t.Errorf("%s: max %.3g mean %.3g differing %d exceed bounds %+v", c.ref, mx, mean, n, c.want)
		}
	}
	// The default path (Apply) is CLIPImageProcessor's sizing: 298x224 for the landscape image.
	if nw, nh := ResizedSize(320, 240, 224); nw != 298 || nh != 224 {
		t.Errorf("ResizedSize(320,240) = %dx%d, want 298x224", nw, nh)
	}
	if nw, nh := ResizedSize(200, 300, 224); nw != 224 || nh != 336 {
		t.Errorf("ResizedSize(200,300) = %dx%d, want 224x336", nw, nh)
	}
}

// TestResampleMatchesImagingCatmullRom checks the fixed-point PIL resampler against imaging's float CatmullRom
// (the same filter): they may only differ by one level on rounding ties.
func TestResampleAgainstFormula(t *testing.T) {
	// A 1-D check of the weights: downscaling a constant row stays constant, and upscaling by 2 reproduces the
	// Keys cubic at offsets ±0.25, ±0.75 (weights −0.0703125, 0.8671875, 0.2265625, −0.0234375 for a=−0.5).
	img := image.NewNRGBA(image.Rect(0, 0, 7, 1))
	for x := 0; x < 7; x++ {
		img.Set(x, 0, color.NRGBA{100, 100, 100, 255})
	}
	img.Set(3, 0, color.NRGBA{200, 0, 100, 255})
	up := resizeBicubic(img, 14, 1)
	// Output 7 has centre 3.75: input weights for x=2..5 at distances 1.25, 0.25, 0.75, 1.75.
	k := []float64{bicubicKernel(1.25), bicubicKernel(0.25), bicubicKernel(0.75), bicubicKernel(1.75)}
	wantR := 100*k[0] + 200*k[1] + 100*k[2] + 100*k[3]
	if got := up.Pix[7*4]; math.Abs(float64(got)-wantR) > 0.5 {
		t.Errorf("upscaled pixel 7 red = %d, want %.2f", got, wantR)
	}
	if math.Abs(k[1]-0.8671875) > 1e-12 || math.Abs(k[0]+0.0703125) > 1e-12 {
		t.Errorf("kernel values %v", k)
	}
	flat := image.NewNRGBA(image.Rect(0, 0, 50, 40))
	for i := range flat.Pix {
		flat.Pix[i] = 77
	}
	down := resizeBicubic(flat, 13, 11)
	for i := 0; i < len(down.Pix); i += 4 {
		if down.Pix[i] != 77 || down.Pix[i+3] != 255 {
			t.Fatalf("constant image changed at %d: %v", i/4, down.Pix[i:i+4])
		}
	}
}

// TestDecodeConversions checks that every input kind becomes the RGB PIL's convert("RGB") would give.
func TestDecodeConversions(t *testing.T) {
	enc := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	r := image.Rect(0, 0, 2, 1)
	// NRGBA with alpha: the stored colour survives, even at alpha 0 (PIL drops alpha, no compositing).
	nrgba := image.NewNRGBA(r)
	nrgba.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 0})
	nrgba.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 128})
	gray := image.NewGray(r)
	gray.SetGray(0, 0, color.Gray{7})
	gray.SetGray(1, 0, color.Gray{250})
	gray16 := image.NewGray16(r)
	gray16.SetGray16(0, 0, color.Gray16{0x12ff})
	gray16.SetGray16(1, 0, color.Gray16{0xff00})
	rgba64 := image.NewNRGBA64(r)
	rgba64.SetNRGBA64(0, 0, color.NRGBA64{0x1234, 0x5678, 0x9abc, 0xffff})
	rgba64.SetNRGBA64(1, 0, color.NRGBA64{0xff00, 0x00ff, 0x8080, 0x0000})
	pal := image.NewPaletted(r, color.Palette{color.NRGBA{1, 2, 3, 255}, color.NRGBA{90, 80, 70, 0}})
	pal.SetColorIndex(0, 0, 0)
	pal.SetColorIndex(1, 0, 1)
	var gifBuf bytes.Buffer
	// GIF stores no colour for its transparent index (Go's encoder writes it premultiplied, its decoder reads it
	// as transparent black), so the GIF case uses an opaque palette.
	opaquePal := image.NewPaletted(r, color.Palette{color.NRGBA{1, 2, 3, 255}, color.NRGBA{90, 80, 70, 255}})
	copy(opaquePal.Pix, pal.Pix)
	g := &gif.GIF{Image: []*image.Paletted{opaquePal, image.NewPaletted(r, color.Palette{color.Black, color.White})}, Delay: []int{0, 0}}
	if err := gif.EncodeAll(&gifBuf, g); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want [2][3]uint8
	}{
		{"nrgba", enc(nrgba), [2][3]uint8{{200, 100, 50}, {10, 20, 30}}},
		{"gray", enc(gray), [2][3]uint8{{7, 7, 7}, {250, 250, 250}}},
		{"gray16 (high byte)", enc(gray16), [2][3]uint8{{0x12, 0x12, 0x12}, {0xff, 0xff, 0xff}}},
		{"nrgba64 (high byte, alpha dropped)", enc(rgba64), [2][3]uint8{{0x12, 0x56, 0x9a}, {0xff, 0x00, 0x80}}},
		{"paletted with transparency", enc(pal), [2][3]uint8{{1, 2, 3}, {90, 80, 70}}},
		{"gif first frame", gifBuf.Bytes(), [2][3]uint8{{1, 2, 3}, {90, 80, 70}}},
	}
	for _, c := range cases {
		img, err := DecodeRGB(c.data)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for x := 0; x < 2; x++ {
			px := img.Pix[4*x : 4*x+4]
			got := [3]uint8{px[0], px[1], px[2]}
			if got != c.want[x] || px[3] != 255 {
				t.Errorf("%s: pixel %d = %v alpha %d, want %v alpha 255", c.name, x, got, px[3], c.want[x])
			}
		}
	}
	// JPEG is lossy: a flat colour must come back close.
	flat := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(flat.Pix); i += 4 {
		copy(flat.Pix[i:], []uint8{180, 60, 20, 255})
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, flat, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	img, err := DecodeRGB(jb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range []int{180, 60, 20} {
		if d := int(img.Pix[8*img.Stride+8*4+c]) - want; d < -3 || d > 3 {
			t.Errorf("jpeg channel %d = %d, want ~%d", c, img.Pix[8*img.Stride+8*4+c], want)
		}
	}
}

// testImages lists the real ScienceQA test images, sorted.
func testImages(tb testing.TB) []string {
	dir := assets.Require(tb, assets.Path("scienceqa", "images", "test"))
	paths, err := filepath.Glob(filepath.Join(dir, "*", "image.png"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		tb.Skipf("no images under %s", dir)
	}
	return paths
}

// TestRealImages decodes and preprocesses every ScienceQA test image (2,017 PNGs). Measured on 2 cores: 5.2 s
// with the files in the page cache, 12 s cold, well under the 60 s that would call for a sample under -short.
func TestRealImages(t *testing.T) {
	paths := testImages(t)
	srcs := make([]ImageSource, len(paths))
	for i, p := range paths {
		srcs[i] = ImageSource{Path: p}
	}
	p := DefaultPreprocess()
	start := time.Now()
	out, err := p.Batch(srcs, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d images decoded and preprocessed in %v", len(paths), time.Since(start))
	for i, px := range out {
		if len(px) != p.NumValues() {
			t.Fatalf("%s: %d values", paths[i], len(px))
		}
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, v := range px {
			lo, hi = min(lo, v), max(hi, v)
		}
		// Normalized [0,1] pixels lie in [−mean/std, (1−mean)/std] ⊂ [−1.8, 2.2].
		if lo < -1.80 || hi > 2.15 || math.IsNaN(float64(lo+hi)) {
			t.Errorf("%s: values in [%g, %g]", paths[i], lo, hi)
		}
	}
}

func TestBadImages(t *testing.T) {
	paths := testImages(t)
	dir := t.TempDir()
	good, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.png")
	notImage := filepath.Join(dir, "notes.png")
	missing := filepath.Join(dir, "missing.png")
	os.WriteFile(truncated, good[:len(good)/2], 0o644)
	os.WriteFile(notImage, []byte("this is not an image\n"), 0o644)
	p := DefaultPreprocess()
	for _, bad := range []string{truncated, notImage, missing} {
		_, err := p.File(ImageSource{Path: bad}, nil)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: error %v does not name the file", bad, err)
		}
	}
	srcs := []ImageSource{{Path: paths[0]}, {Path: truncated}, {Path: paths[1]}, {Name: "inline", Data: []byte("GIF89a junk")}}
	out, err := p.Batch(srcs, 2)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 {
		t.Fatalf("want a BatchError with 2 failures, got %v", err)
	}
	if be.Failed[0].Index != 1 || be.Failed[0].Name != truncated || be.Failed[1].Name != "inline" {
		t.Errorf("failures %v, %v", be.Failed[0], be.Failed[1])
	}
	if !strings.Contains(err.Error(), "inline") && !strings.Contains(err.Error(), truncated) {
		t.Errorf("error %q names no file", err)
	}
	if out[0] == nil || out[2] == nil || out[1] != nil || out[3] != nil {
		t.Errorf("good images lost or bad ones filled: %v %v %v %v", out[0] != nil, out[1] != nil, out[2] != nil, out[3] != nil)
	}
	want, _ := p.File(ImageSource{Path: paths[1]}, nil)
	if d := assets.MaxAbsDiff(out[2], want); d != 0 {
		t.Errorf("batch result differs from single-image result by %g", d)
	}
}
