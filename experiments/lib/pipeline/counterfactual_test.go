package pipeline

import (
	"fmt"
	"strings"
	"testing"
)

func counterfactualInput() (map[string][]float32, []string) {
	feats := map[string][]float32{}
	var pids []string
	for i := range 7 {
		pid := fmt.Sprint(100 + i)
		feats[pid] = []float32{float32(i), float32(10 * i), 1}
		pids = append(pids, pid)
	}
	feats["train-only"] = []float32{-1, -1, -1} // an image problem outside the evaluation set
	return feats, pids
}

func TestShuffledFeatures(t *testing.T) {
	feats, pids := counterfactualInput()
	out, src, err := ShuffledFeatures(feats, pids, DefaultShuffleSeed)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, pid := range pids {
		s := src[pid]
		if s == pid {
			t.Errorf("problem %s keeps its own image", pid)
		}
		if used[s] {
			t.Errorf("image of %s given twice", s)
		}
		used[s] = true
		if &out[pid][0] != &feats[s][0] {
			t.Errorf("problem %s: features are not those of %s", pid, s)
		}
	}
	if len(used) != len(pids) {
		t.Errorf("%d images used for %d problems", len(used), len(pids))
	}
	if &out["train-only"][0] != &feats["train-only"][0] {
		t.Error("a problem outside pids changed")
	}
	for i, pid := range pids {
		if feats[pid][0] != float32(i) {
			t.Fatal("input map modified")
		}
	}
	// Fixed: the same seed gives the same permutation whatever the order of pids; another seed another one.
	rev := append([]string(nil), pids...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	_, src2, _ := ShuffledFeatures(feats, rev, DefaultShuffleSeed)
	_, src3, _ := ShuffledFeatures(feats, pids, DefaultShuffleSeed+1)
	same3 := true
	for _, pid := range pids {
		if src2[pid] != src[pid] {
			t.Errorf("order of pids changed the permutation at %s", pid)
		}
		same3 = same3 && src3[pid] == src[pid]
	}
	if same3 {
		t.Error("another seed gave the same permutation")
	}
	// Two problems swap.
	_, s2, err := ShuffledFeatures(feats, pids[:2], 1)
	if err != nil || s2[pids[0]] != pids[1] || s2[pids[1]] != pids[0] {
		t.Errorf("two problems: %v, %v", s2, err)
	}
	for name, bad := range map[string][]string{"one": pids[:1], "missing": {"100", "nope"}} {
		if _, _, err := ShuffledFeatures(feats, bad, 1); err == nil || !strings.Contains(err.Error(), "image counterfactual") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	feats["bad"] = []float32{1}
	if _, _, err := ShuffledFeatures(feats, []string{"100", "bad"}, 1); err == nil {
		t.Error("features of different lengths: no error")
	}
}

func TestZeroFeatures(t *testing.T) {
	feats, pids := counterfactualInput()
	out, err := ZeroFeatures(feats, pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if len(out[pid]) != len(feats[pid]) {
			t.Errorf("%s: %d values, want %d", pid, len(out[pid]), len(feats[pid]))
		}
		for _, v := range out[pid] {
			if v != 0 {
				t.Errorf("%s: nonzero %g", pid, v)
			}
		}
		if feats[pid][2] != 1 {
			t.Fatal("input map modified")
		}
	}
	if out["train-only"][0] != -1 {
		t.Error("a problem outside pids changed")
	}
	if _, err := ZeroFeatures(feats, []string{"nope"}); err == nil {
		t.Error("missing features: no error")
	}
}
