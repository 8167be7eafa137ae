package pipeline

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/results"
)

// Outcomes are a complete run's per-problem correctness, by scoring protocol, and its zero-shot baseline's: what a
// paired comparison (results.PairedDifference) needs. Accuracies in summary.json are their means.
type Outcomes struct {
	// Primary is the run's primary protocol (summary.json's primary, predictions.json).
	Primary string
	// Correct maps a protocol the run scored ("letter", "cloze", "cloze-norm", "generate", ...: summary.json's
	// scores) to pid → answered right.
	Correct map[string]map[string]bool
	// ZeroShot is the same for the pretrained model on the same problems, from the zero-shot cache record that
	// matches the run (nil when no record with per-problem choices matches; ZeroShotFile names the record).
	ZeroShot     map[string]map[string]bool
	ZeroShotFile string
	// ZeroShotSubset says the record was measured on a larger set of problems containing the run's, restricted to
	// them (its scores on them reproduce the run's recorded zero-shot baselines in every category).
	ZeroShotSubset bool
	// Image holds the run's problems with an image context (the IMG category).
	Image map[string]bool
}

// OutcomeReader reads runs' Outcomes, loading each problems file once.
type OutcomeReader struct {
	// ZeroShotDir is the zero-shot cache to search ("" : DefaultZeroShotCache()).
	ZeroShotDir string

	mu   sync.Mutex
	sets map[string]*scienceqa.Dataset
}

// answerKey loads the problems a run was evaluated on (its config's data).
func (r *OutcomeReader) answerKey(cfg Config) (*scienceqa.Dataset, error) {
	key := cfg.Data.Dir + "\x00" + cfg.Data.ProblemsFile + "\x00" + cfg.Data.SplitsFile
	r.mu.Lock()
	defer r.mu.Unlock()
	if ds := r.sets[key]; ds != nil {
		return ds, nil
	}
	src, err := scienceqa.Open(cfg.Data.Dir, scienceqa.OpenOptions{Problems: cfg.Data.ProblemsFile, Splits: cfg.Data.SplitsFile, NoImageCheck: true})
	if err != nil {
		return nil, fmt.Errorf("ScienceQA data (-data %s): %w", cfg.Data.Dir, err)
	}
	src.Captions = ""
	ds, err := src.Load()
	if err != nil {
		return nil, err
	}
	if r.sets == nil {
		r.sets = map[string]*scienceqa.Dataset{}
	}
	r.sets[key] = ds
	return ds, nil
}

// correctness turns pid → choice into pid → correct by the answer key.
func correctness(ds *scienceqa.Dataset, preds map[string]int, where string) (map[string]bool, error) {
	out := make(map[string]bool, len(preds))
	for pid, c := range preds {
		p, ok := ds.Get(pid)
		if !ok {
			return nil, fmt.Errorf("%s: problem %s is not in the data", where, pid)
		}
		out[pid] = c == p.Answer
	}
	return out, nil
}

func readChoices(path string) (map[string]int, error) {
	var m map[string]int
	if err := results.ReadJSON(path, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func count(m map[string]bool) int {
	n := 0
	for _, ok := range m {
		if ok {
			n++
		}
	}
	return n
}

// Read returns a complete run's Outcomes. Every protocol's correctness is checked against the run's own recorded
// score (summary.json: its primary protocol's choices are predictions.json, each other protocol's
// predictions_<protocol>.json), so a prediction file read under the wrong protocol or answer key is an error.
// Summaries of either version read the same way (results converts version 1 on reading).
func (r *OutcomeReader) Read(dir string) (*Outcomes, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	sum, err := results.ReadSummary(dir)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	ds, err := r.answerKey(cfg)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	o := &Outcomes{Primary: sum.Primary, Correct: map[string]map[string]bool{}, Image: map[string]bool{}}
	files := map[string]string{sum.Primary: PredictionsFile}
	for proto := range sum.Scores {
		if proto != sum.Primary {
			files[proto] = predictionsFile(proto)
		}
	}
	for proto, file := range files {
		path := filepath.Join(dir, file)
		preds, err := readChoices(path)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("run %s: %w", dir, err)
		}
		c, err := correctness(ds, preds, path)
		if err != nil {
			return nil, err
		}
		if avg, ok := sum.Scores[proto]["Avg"]; !ok || avg.Correct != count(c) || avg.Total != len(c) {
			return nil, fmt.Errorf("%s: %d of %d correct, but summary.json records %d of %d for %s", path, count(c), len(c), avg.Correct, avg.Total, proto)
		}
		o.Correct[proto] = c
		for pid := range preds {
			if p, _ := ds.Get(pid); p.HasImage() {
				o.Image[pid] = true
			}
		}
	}
	if len(o.Correct) == 0 {
		return nil, fmt.Errorf("run %s: no predictions file", dir)
	}
	if err := r.zeroShot(o, sum, ds); err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	return o, nil
}

// zeroShot finds the cached zero-shot record of the run. Runs do not record the cache key (it hashes the inputs'
// contents), so the record is recognised by what it holds: per-problem choices for every problem of the run whose
// scores on the run's problems are the run's recorded zero-shot baselines (summary.json), in every category of
// every protocol the record has. A record of exactly the run's problems is preferred; otherwise one of a larger
// evaluation set that contains them (the first N problems of fold 4 are a subset of all of fold 4) is restricted
// to them, and only when that restriction reproduces the recorded baselines category by category
// (Outcomes.ZeroShotSubset says so).
func (r *OutcomeReader) zeroShot(o *Outcomes, sum *results.Summary, ds *scienceqa.Dataset) error {
	dir := r.ZeroShotDir
	if dir == "" {
		dir = DefaultZeroShotCache()
	}
	var pids []string
	for pid := range o.Correct[o.Primary] {
		pids = append(pids, pid)
	}
	sort.Strings(pids)
	problems := make([]*scienceqa.Problem, len(pids))
	for i, pid := range pids {
		problems[i], _ = ds.Get(pid)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var best *zeroShotMatch
	for _, f := range files {
		m, err := matchZeroShot(f, pids, problems, sum, ds)
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		switch {
		case best == nil || (best.subset && !m.subset):
			best = m
		case best.subset == m.subset:
			if !sameOutcomes(best.zs, m.zs) {
				return fmt.Errorf("zero-shot records %s and %s both match the run but disagree", best.file, f)
			}
			// Records of other protocol lists (a run scored with letter, a later one without) complement each other.
			for p, c := range m.zs {
				if _, ok := best.zs[p]; !ok {
					best.zs[p] = c
				}
			}
		}
	}
	if best != nil {
		o.ZeroShot, o.ZeroShotFile, o.ZeroShotSubset = best.zs, best.file, best.subset
	}
	return nil
}

// zeroShotMatch is a zero-shot record that reproduces a run's baselines: its per-problem correctness by protocol,
// and whether it was restricted from a larger evaluation set.
type zeroShotMatch struct {
	file   string
	subset bool
	zs     map[string]map[string]bool
}

// matchZeroShot reads zero-shot record f and returns its correctness on pids when every protocol it holds
// reproduces the run's recorded baseline (nil when it does not or holds no choices).
func matchZeroShot(f string, pids []string, problems []*scienceqa.Problem, sum *results.Summary, ds *scienceqa.Dataset) (*zeroShotMatch, error) {
	var rec zeroShotRecord
	if err := results.ReadJSON(f, &rec); err != nil {
		return nil, fmt.Errorf("zero-shot record: %w", err)
	}
	if err := rec.nameProtocols(); err != nil {
		return nil, fmt.Errorf("zero-shot record %s: %w", f, err)
	}
	if len(rec.Predictions) == 0 {
		return nil, nil
	}
	zs := map[string]map[string]bool{}
	for proto, preds := range rec.Predictions {
		sub := make(map[string]int, len(pids))
		for _, pid := range pids {
			c, found := preds[pid]
			if !found {
				return nil, nil
			}
			sub[pid] = c
		}
		if !reproducesBaseline(problems, sub, sum.Baselines[results.ZeroShot][proto]) {
			return nil, nil
		}
		c, err := correctness(ds, sub, f)
		if err != nil {
			return nil, err
		}
		zs[proto] = c
	}
	return &zeroShotMatch{file: f, subset: rec.Problems != len(pids), zs: zs}, nil
}

// reproducesBaseline reports whether choices score, on problems, exactly the recorded zero-shot accuracy of every
// category (recorded: category → percent; nil: the run has no such baseline).
func reproducesBaseline(problems []*scienceqa.Problem, choices map[string]int, recorded map[string]float64) bool {
	if len(recorded) == 0 {
		return false
	}
	acc, err := scoreRun(problems, choices)
	if err != nil || len(acc) != len(recorded) {
		return false
	}
	for c, v := range recorded {
		got, ok := acc.Percent(c)
		if !ok || math.Abs(got-v) > 1e-9 {
			return false
		}
	}
	return true
}

// sameOutcomes reports whether two zero-shot records agree on every protocol both hold (records of different
// protocol lists are compared on what they share).
func sameOutcomes(a, b map[string]map[string]bool) bool {
	for p, m := range a {
		n, ok := b[p]
		if !ok {
			continue
		}
		if len(n) != len(m) {
			return false
		}
		for pid, v := range m {
			if w, ok := n[pid]; !ok || w != v {
				return false
			}
		}
	}
	return true
}
