package clip

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/gomlx/compute/dtypes"
)

// BenchmarkPreprocess measures decode + preprocess (224, ViT-L/14 settings) of real ScienceQA test images from
// memory, on one core and on all cores; images/s is reported.
func BenchmarkPreprocess(b *testing.B) {
	paths := testImages(b)
	if len(paths) > 256 {
		paths = paths[:256]
	}
	srcs := make([]ImageSource, len(paths))
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		srcs[i] = ImageSource{Name: p, Data: data}
	}
	p := DefaultPreprocess()
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			n := 0
			for i := 0; i < b.N; i++ {
				if _, err := p.Batch(srcs, workers); err != nil {
					b.Fatal(err)
				}
				n += len(srcs)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

func benchFeatures(b *testing.B, m *Model, batch int) {
	enc, err := m.NewEncoder(device.MustShared(), FeatureOptions{})
	if err != nil {
		b.Fatal(err)
	}
	S := m.Config.ImageSize
	px := make([][]float32, batch)
	for i := range px {
		px[i] = make([]float32, 3*S*S)
		for j := range px[i] {
			px[i][j] = float32((i+j)%89)/45 - 1
		}
	}
	if _, err := enc.Encode(px); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := enc.Encode(px); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkFeaturesTiny measures the default multi-scale features of clip_tiny (batch 16).
func BenchmarkFeaturesTiny(b *testing.B) {
	benchFeatures(b, loadTiny(b), 16)
}

// BenchmarkFeaturesViTL14 measures the default features (layers 8, 16, 24) of a ViT-L/14-shaped tower with
// random weights: the real model's cost. $CLIP_BENCH_BATCH sets the batch (default 8); $CLIP_BENCH_DTYPE
// "bfloat16" runs the weights in bf16. Slow on CPU (seconds per image); meant for GPUs.
func BenchmarkFeaturesViTL14(b *testing.B) {
	batch := 8
	if s := os.Getenv("CLIP_BENCH_BATCH"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("CLIP_BENCH_BATCH=%q", s)
		}
		batch = n
	}
	dt := dtypes.Float32
	if os.Getenv("CLIP_BENCH_DTYPE") == "bfloat16" {
		dt = dtypes.BFloat16
	}
	m, err := RandomWeights(ConfigViTL14(), 1, dt)
	if err != nil {
		b.Fatal(err)
	}
	benchFeatures(b, m, batch)
}
