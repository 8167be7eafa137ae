package train

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

func TestH26Sim(t *testing.T) {
	data, err := os.ReadFile("/tmp/h26/lengths.json")
	if err != nil {
		t.Skip()
	}
	var d map[string][]int
	json.Unmarshal(data, &d)
	mk := func(lens, tg []int) []Example {
		var ex []Example
		for i, n := range lens {
			m := make([]bool, n)
			for j := n - tg[i]; j < n; j++ {
				m[j] = true
			}
			ex = append(ex, Example{Tokens: make([]int32, n), LossMask: m})
		}
		return ex
	}
	for _, set := range []string{"train", "eval"} {
		ex := mk(d[set+"_len"], d[set+"_targets"])
		lengths := d[set+"_len"]
		real := 0
		for _, n := range lengths {
			real += n
		}
		for _, nb := range []int{0, 2, 3, 4, 5, 6, 8} {
			var batches []Batch
			if set == "train" {
				batches = EpochBatches(lengths, 8, 0, 0, 32, 384)
			} else {
				batches = SequentialBatches(lengths, 8, 32, 384)
			}
			var plan BucketPlan
			if nb > 0 {
				plan = planBuckets(ex, batches, nb, 384, true)
				plan.apply(ex, batches)
			}
			padded, slots, targets := 0, 0, 0
			pairs, lens := map[[2]int]bool{}, map[int]bool{}
			for _, b := range batches {
				padded += len(b.Indices) * b.Len
				W := b.Window
				most := 0
				for _, i := range b.Indices {
					most = max(most, targetCount(ex[i]))
					targets += targetCount(ex[i])
				}
				if W == 0 {
					W = AnswerWindow(most, b.Len)
				}
				slots += len(b.Indices) * W
				pairs[[2]int{b.Len, W}] = true
				lens[b.Len] = true
			}
			fmt.Printf("%s buckets=%d plan=%v: padded %d / real %d = +%.1f%% padding; answer slots %d / targets %d = +%.1f%%; %d lengths, %d (S,W) shapes\n",
				set, nb, plan, padded, real, 100*(float64(padded)/float64(real)-1), slots, targets, 100*(float64(slots)/float64(targets)-1), len(lens), len(pairs))
		}
	}
}
