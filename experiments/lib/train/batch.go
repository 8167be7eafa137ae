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
	W = AnswerWindow(most, S)
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
