package evaluate

import (
	"context"
	"math"
	"testing"

	"github.com/adapterlab/llama-adapter/models/device"
)

// TestShardedLetterScoresEqualSingleDevice: letter scoring on 4 devices (batches of 3 rows padded to 4; frozen
// weights replicated, then split) gives the single-device log-probabilities within 1e-4 (float32 rounding of
// partitioned matmuls is ~1e-6).
func TestShardedLetterScoresEqualSingleDevice(t *testing.T) {
	b := device.MustShared()
	if b.NumDevices() < 4 {
		t.Skipf("backend %s has %d device(s); sharded scoring needs 4 (the XLA CPU plugin exposes 4)", b.Name(), b.NumDevices())
	}
	examples := []LetterExample{
		{ID: "a", Prompt: []int32{1, 20, 30, 40, 50}, Options: [][]int32{{3}, {4}, {5}}},
		{ID: "b", Prompt: []int32{1, 21, 31}, Options: [][]int32{{3}, {4}}},
		{ID: "c", Prompt: []int32{1, 22, 32, 42, 52, 62, 72}, Options: [][]int32{{3}, {4}, {5}, {6}}},
		{ID: "d", Prompt: []int32{1, 23}, Options: [][]int32{{3}, {4}}},
	}
	scores := func(devices string, shard bool) [][]float64 {
		m := tinyModel(t, 4)
		p, err := device.NewPlacement(b, devices, shard)
		if err != nil {
			t.Fatal(err)
		}
		r := &Runner{Model: m, Adapter: randomAdapter(t, m, 2, false), Backend: b, BatchSize: 3, PadMultiple: 8, Placement: p}
		s, err := r.OptionScores(context.Background(), examples)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := scores("1", false)
	for _, shard := range []bool{false, true} {
		got := scores("4", shard)
		for i := range want {
			for o := range want[i] {
				if d := math.Abs(got[i][o] - want[i][o]); d > 1e-4*math.Abs(want[i][o])+1e-6 {
					t.Errorf("split weights %v: example %d option %d: %v vs %v on one device", shard, i, o, got[i][o], want[i][o])
				}
			}
		}
	}
}
