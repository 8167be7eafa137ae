package train

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Example is one training or evaluation sequence.
type Example struct {
	ID string
	// Tokens is the whole sequence: BOS, prompt, answer (and EOS if the prompt format adds it).
	Tokens []int32
	// LossMask marks the target tokens (true where Tokens[i] is predicted and counted in the loss).
	LossMask []bool
	// Features are the image's multi-scale features, M·D float32 (nil for text-only examples).
	Features []float32
}

// Validate checks an example's internal consistency.
func (e Example) Validate(vocab int) error {
	if len(e.Tokens) < 2 || len(e.LossMask) != len(e.Tokens) {
		return fmt.Errorf("example %s: %d tokens and %d mask entries (need ≥ 2 tokens and one mask entry each)",
			e.ID, len(e.Tokens), len(e.LossMask))
	}
	if e.LossMask[0] {
		return fmt.Errorf("example %s: the first token cannot be a target (nothing predicts it)", e.ID)
	}
	n := 0
	for i, t := range e.Tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("example %s: token %d at %d is outside the vocabulary (%d)", e.ID, t, i, vocab)
		}
		if e.LossMask[i] {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("example %s: no target tokens", e.ID)
	}
	return nil
}

// Batch is a list of example indices padded to one length.
type Batch struct {
	Indices []int
	Len     int // padded sequence length
	// Window is the answer head's window (see AnswerSlots) when length buckets chose it; 0: AnswerWindow's.
	Window int
}

// PadLen rounds n up to a multiple of m, capped at maxLen: few distinct shapes keep compiled graphs few.
func PadLen(n, m, maxLen int) int {
	if m > 1 {
		n = (n + m - 1) / m * m
	}
	if maxLen > 0 && n > maxLen {
		n = maxLen
	}
	return n
}

// EpochBatches returns the batches of one epoch: examples shuffled with (seed, epoch), grouped in windows of 32
// batches, sorted by length inside a window (so a batch holds similar lengths: little padding), cut into batches,
// and the batches shuffled again. The same (seed, epoch) always gives the same batches, which is what resuming relies
// on. The last partial batch is kept.
func EpochBatches(lengths []int, batchSize int, seed uint64, epoch int, padMultiple, maxLen int) []Batch {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)+1))
	order := rng.Perm(len(lengths))
	window := 32 * batchSize
	var batches []Batch
	for w := 0; w < len(order); w += window {
		chunk := append([]int(nil), order[w:min(w+window, len(order))]...)
		sort.SliceStable(chunk, func(a, b int) bool { return lengths[chunk[a]] < lengths[chunk[b]] })
		batches = append(batches, cut(chunk, lengths, batchSize, padMultiple, maxLen)...)
	}
	rng.Shuffle(len(batches), func(a, b int) { batches[a], batches[b] = batches[b], batches[a] })
	return batches
}

// SequentialBatches cuts examples in order (for evaluation), sorted by length for little padding; the result maps
// back through Indices.
func SequentialBatches(lengths []int, batchSize, padMultiple, maxLen int) []Batch {
	order := make([]int, len(lengths))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return lengths[order[a]] < lengths[order[b]] })
	return cut(order, lengths, batchSize, padMultiple, maxLen)
}

// cut splits order into consecutive batches of batchSize (the last may be short), each padded to its longest
// example (capped at maxLen).
func cut(order, lengths []int, batchSize, padMultiple, maxLen int) []Batch {
	var batches []Batch
	for s := 0; s < len(order); s += batchSize {
		idx := order[s:min(s+batchSize, len(order))]
		longest := 0
		for _, i := range idx {
			longest = max(longest, min(lengths[i], maxLen))
		}
		batches = append(batches, Batch{Indices: idx, Len: PadLen(longest, padMultiple, maxLen)})
	}
	return batches
}

// AnswerWindowMultiple is what AnswerWindow rounds up to: the answer head's graphs are compiled per (padded length,
// window), and a multiple of 8 keeps the windows of a run to one or two.
const AnswerWindowMultiple = 8

// AnswerWindow is the answer head's per-row window for a batch whose fullest row has n target positions: n rounded
// up to AnswerWindowMultiple, at most the padded length S (and at least 1, so the shape is never empty).
func AnswerWindow(n, S int) int {
	return max(1, min(PadLen(n, AnswerWindowMultiple, 0), S))
}

// AnswerSlots compacts a batch's dense loss inputs (targets and weights [B, S], flat, weight 1 where the token at
// that position predicts a target) into the answer head's window: per row the positions whose weight is not zero,
// in order, then padding slots (position 0, target 0, weight 0) up to W = AnswerWindow(the fullest row's count, S).
// It returns positions, targets and weights [B, W], flat, and W.
func AnswerSlots(targets []int32, weights []float32, B, S int) (pos, tgt []int32, w []float32, W int) {
	return answerSlots(targets, weights, B, S, 0)
}

// MaxTargets is the largest number of non-zero weights in one row of a flat [B, S] weights matrix.
func MaxTargets(weights []float32, B, S int) int {
	most := 0
	for r := 0; r < B; r++ {
		n := 0
		for _, x := range weights[r*S : (r+1)*S] {
			if x != 0 {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// answerSlots is AnswerSlots with a given window W (0: AnswerWindow of the fullest row); W must hold every row's
// targets.
func answerSlots(targets []int32, weights []float32, B, S, W int) (pos, tgt []int32, w []float32, _ int) {
	if W == 0 {
		W = AnswerWindow(MaxTargets(weights, B, S), S)
	}
	pos, tgt, w = make([]int32, B*W), make([]int32, B*W), make([]float32, B*W)
	for r := 0; r < B; r++ {
		k := r * W
		for j := 0; j < S; j++ {
			if x := weights[r*S+j]; x != 0 {
				pos[k], tgt[k], w[k] = int32(j), targets[r*S+j], x
				k++
			}
		}
	}
	return pos, tgt, w, W
}

// Length buckets: a run compiles its training step once per distinct (padded length, answer window) pair. Rounding
// to PadMultiple gives up to MaxLen/PadMultiple lengths (12 for SmolLM2's 384/32), times the windows; with
// Config.LengthBuckets the lengths are a few levels chosen from the data so that the padding they add is smallest.

// BucketMultiple is what chosen padded lengths are rounded up to.
const BucketMultiple = 16

// ChooseLevels returns at most n ascending levels, each a multiple of multiple (the last possibly capped at top,
// when top > 0), such that every value fits under one (the largest value, rounded up and capped, is always a
// level) and Σ weights[i] × (the smallest level ≥ values[i]) is the least possible: an exact dynamic program over
// the rounded values. Values above top are counted at top. It returns nil for no values.
func ChooseLevels(values, weights []int, n, multiple, top int) []int {
	round := func(v int) int {
		v = PadLen(max(v, 1), multiple, 0)
		if top > 0 {
			v = min(v, top)
		}
		return v
	}
	w := map[int]int{}
	for i, v := range values {
		w[round(v)] += weights[i]
	}
	cands := make([]int, 0, len(w))
	for c := range w {
		cands = append(cands, c)
	}
	sort.Ints(cands)
	m := len(cands)
	if m == 0 || n < 1 {
		return nil
	}
	n = min(n, m)
	// pre[i] = total weight of cands[:i]; a level at cands[k] covering cands[j..k] costs cands[k] × (pre[k+1]−pre[j]).
	pre := make([]int, m+1)
	for i, c := range cands {
		pre[i+1] = pre[i] + w[c]
	}
	const inf = int(^uint(0) >> 2)
	// best[l][k]: least cost of covering cands[..k] with l levels, the last at cands[k]; from[l][k] the previous one.
	best := make([][]int, n+1)
	from := make([][]int, n+1)
	for l := range best {
		best[l], from[l] = make([]int, m), make([]int, m)
		for k := range best[l] {
			best[l][k], from[l][k] = inf, -1
		}
	}
	for k := 0; k < m; k++ {
		best[1][k] = cands[k] * pre[k+1]
	}
	for l := 2; l <= n; l++ {
		for k := 0; k < m; k++ {
			for j := 0; j < k; j++ {
				if best[l-1][j] == inf {
					continue
				}
				if c := best[l-1][j] + cands[k]*(pre[k+1]-pre[j+1]); c < best[l][k] {
					best[l][k], from[l][k] = c, j
				}
			}
		}
	}
	// Fewer levels never cost less, but n may exceed what helps: take the best over l ≤ n ending at the top.
	bestL := 1
	for l := 2; l <= n; l++ {
		if best[l][m-1] < best[bestL][m-1] {
			bestL = l
		}
	}
	var levels []int
	for l, k := bestL, m-1; l >= 1 && k >= 0; l, k = l-1, from[l][k] {
		levels = append(levels, cands[k])
	}
	sort.Ints(levels)
	return levels
}

// FitLevel is the smallest level ≥ v, or 0 when v exceeds them all.
func FitLevel(levels []int, v int) int {
	i := sort.SearchInts(levels, v)
	if i == len(levels) {
		return 0
	}
	return levels[i]
}

// BucketPlan is a run's fixed padded lengths and, with the answer head, one answer window per length: the most
// target positions of any example no longer than the length, rounded up to AnswerWindowMultiple. Every batch padded to
// a length then has that length's window, so the step compiles once per length, not per (length, window) pair; the
// window holds every batch of any epoch because it covers all examples short enough for the length.
type BucketPlan struct {
	Lengths []int `json:"lengths"`
	Windows []int `json:"windows,omitempty"`
}

// targetCount is the number of target positions of an example (tokens predicted and counted in the loss).
func targetCount(e Example) int {
	n := 0
	for j := 1; j < len(e.LossMask); j++ {
		if e.LossMask[j] {
			n++
		}
	}
	return n
}

// planBuckets chooses at most n padded lengths (multiples of BucketMultiple, capped at maxLen) from batches, each
// batch weighing its rows, and with windows one answer window per length. The longest example of all sets the top
// length, so that any batch of any epoch fits.
func planBuckets(examples []Example, batches []Batch, n, maxLen int, windows bool) BucketPlan {
	var longest, rows []int
	top := 0
	for _, e := range examples {
		top = max(top, min(len(e.Tokens), maxLen))
	}
	for _, b := range batches {
		l := 0
		for _, i := range b.Indices {
			l = max(l, len(examples[i].Tokens))
		}
		longest, rows = append(longest, l), append(rows, len(b.Indices))
	}
	// The longest example weighs nothing but makes sure a level covers it.
	longest, rows = append(longest, top), append(rows, 0)
	p := BucketPlan{Lengths: ChooseLevels(longest, rows, n, BucketMultiple, maxLen)}
	if windows {
		p.Windows = make([]int, len(p.Lengths))
		for _, e := range examples {
			if L := FitLevel(p.Lengths, len(e.Tokens)); L > 0 {
				k := sort.SearchInts(p.Lengths, L)
				p.Windows[k] = max(p.Windows[k], targetCount(e))
			}
		}
		// A batch padded to a length may hold any shorter example: the window is the most over all of them.
		for k, L := range p.Lengths {
			if k > 0 {
				p.Windows[k] = max(p.Windows[k], p.Windows[k-1])
			}
			p.Windows[k] = AnswerWindow(p.Windows[k], L)
		}
	}
	return p
}

// apply sets each batch's padded length and window from the plan (a batch whose longest example exceeds it keeps
// its own).
func (p BucketPlan) apply(examples []Example, batches []Batch) {
	for k := range batches {
		b := &batches[k]
		l := 0
		for _, i := range b.Indices {
			l = max(l, len(examples[i].Tokens))
		}
		L := FitLevel(p.Lengths, l)
		if L == 0 {
			continue
		}
		b.Len = L
		if len(p.Windows) > 0 {
			b.Window = p.Windows[sort.SearchInts(p.Lengths, L)]
		}
	}
}
