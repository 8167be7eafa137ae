package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/results"
)

// The zero-shot baseline is the pretrained model itself, scored by the run's protocols on the run's evaluation
// problems: the row every trained adapter is read against. A zero-init adapter at step 0 is exactly this model
// (its gates are 0), so it is measured without an adapter at all, and image features play no part. It depends only
// on the model, tokenizer, data, evaluation problems and prompt settings, not on the recipe, so it is computed
// once and kept in results/zero-shot/<key>.json (DefaultZeroShotCache; -zero-shot-cache moves it), shared by every
// run and sweep of the same inputs, whatever their runs folder: the key names contents, not paths.

// DefaultZeroShotCache is results/zero-shot in the repository (committed beside the runs that use it).
func DefaultZeroShotCache() string { return filepath.Join(assets.RepoRoot(), "results", "zero-shot") }

// zeroShotVersion names the cache layout and scoring code; bump it when either changes.
const zeroShotVersion = "zero-shot v1"

// zeroShotRecord is one cached zero-shot evaluation.
type zeroShotRecord struct {
	Key      string `json:"key"`
	Model    string `json:"model"`
	Problems int    `json:"problems"`
	// Scores holds, per protocol ("letter scoring", "cloze scoring", ...), the accuracy by category.
	Scores map[string]results.AccuracyTable `json:"scores"`
	// Predictions holds, per protocol (as Scores), the pretrained model's choice for every problem (pid → option
	// index): what a paired comparison of a trained run against zero-shot needs. Records written before it was
	// kept lack it; evaluating the base model (scienceqa eval without -adapter) fills it in.
	Predictions map[string]map[string]int `json:"predictions,omitempty"`
}

// zeroShotKey hashes everything a zero-shot score depends on: the inputs' content digests, the evaluation problems
// and the prompt settings the protocols read.
func zeroShotKey(cfg Config, cur resolved, ex *runExamples, protocols []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", zeroShotVersion)
	for _, name := range []string{"model", "tokenizer", "problems", "splits", "captions"} {
		fmt.Fprintf(h, "%s=%s\n", name, cur.Digests[name])
	}
	for _, name := range sortedKeys(cur.Digests) {
		if strings.HasPrefix(name, "parquet:") {
			fmt.Fprintf(h, "%s=%s\n", name, cur.Digests[name])
		}
	}
	fmt.Fprintf(h, "dtype=%s format=%s captions=%v maxlen=%d protocols=%s\n", cfg.Model.DType, cfg.Data.Format,
		cfg.Data.Captions, cfg.Train.MaxLen, strings.Join(protocols, ","))
	fmt.Fprintf(h, "pids=%s\n", strings.Join(ex.evalPIDs, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// zeroShotProtocols lists the scoring protocols of mode that the zero-shot baseline measures (generation is left
// out: it is the slowest and the scorers already show what the pretrained model knows).
func zeroShotProtocols(mode EvalMode) []string {
	var ps []string
	if mode.letter() {
		ps = append(ps, ScoringLabel("letter"))
	}
	if mode.cloze() {
		ps = append(ps, ScoringLabel("cloze"), ScoringLabel("cloze-norm"))
	}
	return ps
}

// zeroShotBaselines returns the zero-shot accuracies for the run's baselines ("zero-shot, <protocol>" → category →
// percent), from the shared cache or measured now (and cached). It returns nil when the mode has no scoring
// protocol.
func zeroShotBaselines(cfg Config, s *session, cur resolved, ex *runExamples, out io.Writer) (map[string]map[string]float64, error) {
	protocols := zeroShotProtocols(cfg.Eval.Mode)
	if len(protocols) == 0 {
		return nil, nil
	}
	key := zeroShotKey(cfg, cur, ex, protocols)
	dir := cfg.Eval.ZeroShotCache
	if dir == "" {
		dir = DefaultZeroShotCache()
	}
	path := filepath.Join(dir, key+".json")
	rec, err := readZeroShot(path, key)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		fmt.Fprintf(out, "zero-shot baseline (the pretrained model, no adapter) on %d problems, cached in %s…\n", len(ex.evalPIDs), path)
		mode := EvalLetter
		switch {
		case cfg.Eval.Mode.letter() && cfg.Eval.Mode.cloze():
			mode = EvalScores
		case cfg.Eval.Mode.cloze():
			mode = EvalCloze
		}
		zcfg := cfg
		zcfg.Eval.Mode = mode
		preds, err := evaluateRun(zcfg, s.model, nil, s.backend, s.tok, textOnly(ex), out)
		if err != nil {
			return nil, fmt.Errorf("zero-shot baseline: %w", err)
		}
		rec = &zeroShotRecord{Key: key, Model: cur.Paths["model"], Problems: len(ex.evalPIDs)}
		if err := rec.setPredictions(s.data.eval, protocols, zeroShotChoices(mode, preds)); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("zero-shot baseline: %w", err)
		}
		if err := results.WriteJSONAtomic(path, rec); err != nil {
			return nil, fmt.Errorf("zero-shot baseline: %w", err)
		}
	} else {
		fmt.Fprintf(out, "zero-shot baseline: from %s\n", path)
	}
	b := map[string]map[string]float64{}
	for p, t := range rec.Scores {
		row := map[string]float64{}
		for c, v := range t {
			row[c] = v.Accuracy
		}
		b["zero-shot, "+p] = row
	}
	return b, nil
}

// zeroShotChoices returns a base-model evaluation's choices by protocol label (letter scoring, cloze scoring, cloze
// scoring per-token mean), whichever mode ran them.
func zeroShotChoices(mode EvalMode, preds *predictions) map[string]map[string]int {
	by := map[string]map[string]int{ScoringLabel("letter"): preds.letter, ScoringLabel("cloze"): preds.cloze,
		ScoringLabel("cloze-norm"): preds.norm}
	switch mode {
	case EvalLetter, EvalScores:
		by[ScoringLabel("letter")] = preds.choice
	case EvalCloze:
		by[ScoringLabel("cloze")] = preds.choice
	}
	return by
}

// setPredictions scores the choices of each protocol on the evaluation problems and keeps both the scores and the
// choices. A protocol the record already scores must score the same now, category by category: a cached baseline
// that a new measurement of the same inputs contradicts is an error, not something to overwrite silently.
func (rec *zeroShotRecord) setPredictions(problems []*scienceqa.Problem, protocols []string, choices map[string]map[string]int) error {
	if rec.Scores == nil {
		rec.Scores = map[string]results.AccuracyTable{}
	}
	if rec.Predictions == nil {
		rec.Predictions = map[string]map[string]int{}
	}
	for _, p := range protocols {
		if choices[p] == nil {
			continue
		}
		acc, err := scoreRun(problems, choices[p])
		if err != nil {
			return fmt.Errorf("zero-shot baseline, %s: %w", p, err)
		}
		if old, ok := rec.Scores[p]; ok {
			for c, v := range old {
				if now := acc[c]; now.Correct != v.Correct || now.Total != v.Total {
					return fmt.Errorf("zero-shot baseline %s, %s, %s: cached %d/%d correct, measured now %d/%d (delete the cache file to measure again)",
						rec.Key, p, c, v.Correct, v.Total, now.Correct, now.Total)
				}
			}
		}
		rec.Scores[p], rec.Predictions[p] = acc, choices[p]
	}
	return nil
}

// storeZeroShot keeps a base-model evaluation (Evaluate without an adapter: exactly the zero-shot baseline) in the
// zero-shot cache: a new record, or the per-problem choices an older record lacks (its scores must agree).
func storeZeroShot(cfg Config, s *session, ex *runExamples, preds *predictions, out io.Writer) error {
	protocols := zeroShotProtocols(cfg.Eval.Mode)
	if len(protocols) == 0 {
		return nil
	}
	cur, err := currentRecord(cfg, s.modelPath, s.tokPath, "")
	if err != nil {
		return err
	}
	key := zeroShotKey(cfg, cur, ex, protocols)
	dir := cfg.Eval.ZeroShotCache
	if dir == "" {
		dir = DefaultZeroShotCache()
	}
	path := filepath.Join(dir, key+".json")
	rec, err := readZeroShot(path, key)
	if err != nil {
		return err
	}
	if rec == nil {
		rec = &zeroShotRecord{Key: key, Model: cur.Paths["model"], Problems: len(ex.evalPIDs)}
	}
	if err := rec.setPredictions(s.data.eval, protocols, zeroShotChoices(cfg.Eval.Mode, preds)); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("zero-shot baseline: %w", err)
	}
	if err := results.WriteJSONAtomic(path, rec); err != nil {
		return fmt.Errorf("zero-shot baseline: %w", err)
	}
	fmt.Fprintf(out, "zero-shot baseline with per-problem choices: %s\n", path)
	return nil
}

// readZeroShot reads a cached zero-shot record; (nil, nil) when there is none.
func readZeroShot(path, key string) (*zeroShotRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("zero-shot baseline: %w", err)
	}
	var rec zeroShotRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("zero-shot baseline %s: %w (delete it to measure again)", path, err)
	}
	if rec.Key != key || len(rec.Scores) == 0 {
		return nil, fmt.Errorf("zero-shot baseline %s: key %q, want %q, or no scores (delete it to measure again)", path, rec.Key, key)
	}
	return &rec, nil
}

// textOnly returns the evaluation examples without image features (the pretrained model has no visual input).
func textOnly(ex *runExamples) *runExamples {
	c := *ex
	c.letters = append([]evaluate.LetterExample(nil), ex.letters...)
	for i := range c.letters {
		c.letters[i].Features = nil
	}
	c.clozes = append([]evaluate.ClozeExample(nil), ex.clozes...)
	for i := range c.clozes {
		c.clozes[i].Features = nil
	}
	return &c
}
