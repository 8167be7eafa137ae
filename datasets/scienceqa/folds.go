package scienceqa

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// DefaultFolds is the default number of folds of the local benchmark split.
const DefaultFolds = 5

// Fold returns the fold (0..k-1) of pid in a k-fold split: a 64-bit FNV-1a hash of the seed (8 bytes, little
// endian) followed by the pid, mixed by SplitMix64's finalizer, modulo k. It depends on nothing but its
// arguments, so a problem keeps its fold whatever else is in the data set. k < 1 is treated as 1.
func Fold(pid string, k int, seed uint64) int {
	if k < 1 {
		return 0
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(pid))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(k))
}

// Folds splits problems into k disjoint folds by Fold, keeping their order within each fold.
func Folds(problems []*Problem, k int, seed uint64) ([][]*Problem, error) {
	if k < 2 {
		return nil, fmt.Errorf("scienceqa: %d folds, want at least 2", k)
	}
	folds := make([][]*Problem, k)
	for _, p := range problems {
		f := Fold(p.PID, k, seed)
		folds[f] = append(folds[f], p)
	}
	return folds, nil
}

// TrainEval returns the problems outside fold (for training) and those in it (for evaluation).
func TrainEval(problems []*Problem, k int, seed uint64, fold int) (train, eval []*Problem, err error) {
	if k < 2 || fold < 0 || fold >= k {
		return nil, nil, fmt.Errorf("scienceqa: fold %d of %d folds", fold, k)
	}
	for _, p := range problems {
		if Fold(p.PID, k, seed) == fold {
			eval = append(eval, p)
		} else {
			train = append(train, p)
		}
	}
	return train, eval, nil
}
