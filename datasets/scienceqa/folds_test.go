package scienceqa

import (
	"strconv"
	"testing"
)

func TestFolds(t *testing.T) {
	var ps []*Problem
	for i := 1; i <= 4241; i++ {
		ps = append(ps, &Problem{PID: strconv.Itoa(i * 5)})
	}
	folds, err := Folds(ps, DefaultFolds, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for f, fold := range folds {
		// 4241/5 = 848 expected, standard deviation 26.
		if len(fold) < 720 || len(fold) > 976 {
			t.Errorf("fold %d has %d problems", f, len(fold))
		}
		for _, p := range fold {
			if _, dup := seen[p.PID]; dup {
				t.Fatalf("pid %s in two folds", p.PID)
			}
			seen[p.PID] = f
			if Fold(p.PID, DefaultFolds, 0) != f {
				t.Fatalf("pid %s: Fold disagrees with Folds", p.PID)
			}
		}
	}
	if len(seen) != len(ps) {
		t.Fatalf("%d of %d problems assigned", len(seen), len(ps))
	}
	train, eval, err := TrainEval(ps, DefaultFolds, 0, 2)
	if err != nil || len(eval) != len(folds[2]) || len(train)+len(eval) != len(ps) {
		t.Errorf("TrainEval: %d + %d, %v", len(train), len(eval), err)
	}
	for _, p := range train {
		if seen[p.PID] == 2 {
			t.Fatalf("pid %s of the eval fold in train", p.PID)
		}
	}
	// Another seed reshuffles (4/5 of pids move, on average).
	moved := 0
	for _, p := range ps {
		if Fold(p.PID, DefaultFolds, 1) != seen[p.PID] {
			moved++
		}
	}
	if moved < len(ps)*7/10 || moved > len(ps)*9/10 {
		t.Errorf("seed 1 moved %d of %d pids", moved, len(ps))
	}
	// Pinned assignments: a change of the hash would silently change every published fold.
	for pid, want := range map[string]int{"1": 4, "4": 2, "21208": 0} {
		if got := Fold(pid, 5, 0); got != want {
			t.Errorf("Fold(%s, 5, 0) = %d, pinned %d", pid, got, want)
		}
	}
	if _, err := Folds(ps, 1, 0); err == nil {
		t.Error("1 fold accepted")
	}
	if _, _, err := TrainEval(ps, 5, 0, 5); err == nil {
		t.Error("fold 5 of 5 accepted")
	}
}
