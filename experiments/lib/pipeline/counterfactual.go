package pipeline

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Image counterfactuals: does a multimodal adapter use the image? Evaluate it again with every image problem's
// features replaced by another image problem's (ShuffledFeatures) and by zeros (ZeroFeatures), and compare the
// IMG accuracy paired with the true images' (results.PairedDifference): true ≈ shuffled means the image is
// ignored. Both functions only rearrange the feature map that imageFeatures returns; the evaluation takes the
// map through buildExamples (session.examples) as it takes the true one.

// DefaultShuffleSeed is the seed of the fixed image permutation.
const DefaultShuffleSeed = 2700

// ShuffledFeatures returns a copy of feats in which each problem of pids (the evaluation problems with an image)
// carries the features of another problem of pids: a derangement drawn by Sattolo's algorithm (one cycle through
// all of them, so no problem keeps its own image) from a generator seeded with seed, over the pids in sorted order
// (the same permutation for the same problems, whatever their order). Problems not in pids keep their features.
// source maps each permuted pid to the pid whose features it now has. The feature slices are shared with feats,
// not copied: neither map's slices may be written.
func ShuffledFeatures(feats map[string][]float32, pids []string, seed uint64) (out map[string][]float32, source map[string]string, err error) {
	sorted, err := imagePIDs(feats, pids)
	if err != nil {
		return nil, nil, err
	}
	if len(sorted) < 2 {
		return nil, nil, fmt.Errorf("image counterfactual: %d problem(s) with an image; a shuffle needs at least 2", len(sorted))
	}
	perm := make([]int, len(sorted))
	for i := range perm {
		perm[i] = i
	}
	r := rand.New(rand.NewPCG(seed, 0x1a6e))
	// Sattolo: j < i strictly, so the result is a single cycle; modulo (not IntN) keeps the draw fixed across Go
	// releases.
	for i := len(perm) - 1; i > 0; i-- {
		j := int(r.Uint64() % uint64(i))
		perm[i], perm[j] = perm[j], perm[i]
	}
	out = make(map[string][]float32, len(feats))
	for pid, f := range feats {
		out[pid] = f
	}
	source = make(map[string]string, len(sorted))
	for i, pid := range sorted {
		src := sorted[perm[i]]
		out[pid], source[pid] = feats[src], src
	}
	return out, source, nil
}

// ZeroFeatures returns a copy of feats in which each problem of pids has all-zero features of the same length:
// the image removed while the adapter's visual path stays in place. Problems not in pids keep their features.
func ZeroFeatures(feats map[string][]float32, pids []string) (map[string][]float32, error) {
	sorted, err := imagePIDs(feats, pids)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float32, len(feats))
	for pid, f := range feats {
		out[pid] = f
	}
	for _, pid := range sorted {
		out[pid] = make([]float32, len(feats[pid]))
	}
	return out, nil
}

// imagePIDs checks that every pid has features (all of one length) and returns them sorted, without duplicates.
func imagePIDs(feats map[string][]float32, pids []string) ([]string, error) {
	seen := map[string]bool{}
	var sorted []string
	n := -1
	for _, pid := range pids {
		f, ok := feats[pid]
		if !ok || len(f) == 0 {
			return nil, fmt.Errorf("image counterfactual: problem %s has no image features", pid)
		}
		if n >= 0 && len(f) != n {
			return nil, fmt.Errorf("image counterfactual: problem %s has %d feature values, others %d", pid, len(f), n)
		}
		n = len(f)
		if !seen[pid] {
			seen[pid] = true
			sorted = append(sorted, pid)
		}
	}
	sort.Strings(sorted)
	return sorted, nil
}
