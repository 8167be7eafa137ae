package llama

import (
	"testing"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/gomlx/compute/dtypes"
)

func loadStories(t testing.TB) *Model {
	path := assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	m, err := Load(path, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// greedyIDs generates like llama2.c's run.c with -t 0: start at BOS=1, stop at BOS, 256 positions in all.
func greedyIDs(t testing.TB, m *Model, useCache bool) []int {
	gen := m.NewGenerator(device.MustShared(), 256, useCache)
	out, err := gen.Generate([][]int{{1}}, 256, nil, func(_, _, next int) bool { return next != 1 })
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func TestGreedyCacheEqualsNoCache(t *testing.T) {
	m := loadStories(t)
	start := time.Now()
	withCache := greedyIDs(t, m, true)
	t.Logf("cache: %d tokens in %v", len(withCache), time.Since(start))
	start = time.Now()
	noCache := greedyIDs(t, m, false)
	t.Logf("no cache: %d tokens in %v", len(noCache), time.Since(start))
	if len(withCache) != len(noCache) {
		t.Fatalf("lengths differ: %d vs %d", len(withCache), len(noCache))
	}
	for i := range withCache {
		if withCache[i] != noCache[i] {
			t.Fatalf("token %d differs: %d vs %d", i, withCache[i], noCache[i])
		}
	}
	t.Log(withCache[:20])
}

// BenchmarkGenerateStories260K measures greedy KV-cache generation (batch 1, 256 positions) in tokens/s.
func BenchmarkGenerateStories260K(b *testing.B) {
	m := loadStories(b)
	gen := m.NewGenerator(device.MustShared(), 256, true)
	if _, err := gen.Generate([][]int{{1}}, 256, nil, nil); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		out, err := gen.Generate([][]int{{1}}, 256, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		n += len(out[0])
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
}
