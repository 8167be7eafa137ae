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
		for s := 0; s < len(chunk); s += batchSize {
			idx := chunk[s:min(s+batchSize, len(chunk))]
			longest := 0
			for _, i := range idx {
				longest = max(longest, min(lengths[i], maxLen))
			}
			batches = append(batches, Batch{Indices: idx, Len: PadLen(longest, padMultiple, maxLen)})
		}
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
