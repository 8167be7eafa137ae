package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
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
	// Scores holds, per protocol ("letter", "cloze", ...), the accuracy by category. Records written before
	// protocols were values name them by label ("letter scoring", ...: zeroShotLabels).
	Scores map[string]results.AccuracyTable `json:"scores"`
}

// zeroShotLabels are the names the first cache records gave the protocols; the key still hashes them, so those
// records stay valid.
var zeroShotLabels = map[string]string{"letter": "letter scoring", "cloze": "cloze scoring", "cloze-norm": "cloze scoring, per-token mean"}

// zeroShotKey hashes everything a zero-shot score depends on: the inputs' content digests, the evaluation problems,
// the prompt settings the protocols read and the protocols.
func zeroShotKey(cfg Config, cur resolved, ex *runExamples, protocols []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", zeroShotVersion)
	for _, name := range []string{"model", "tokenizer", "problems", "splits", "captions"} {
		fmt.Fprintf(h, "%s=%s\n", name, cur.Digests[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cur.Digests)) {
		if strings.HasPrefix(name, "parquet:") {
			fmt.Fprintf(h, "%s=%s\n", name, cur.Digests[name])
		}
	}
	labels := make([]string, len(protocols))
	for i, p := range protocols {
		if labels[i] = zeroShotLabels[p]; labels[i] == "" {
			labels[i] = p
		}
	}
	fmt.Fprintf(h, "dtype=%s format=%s captions=%v maxlen=%d protocols=%s\n", cfg.Model.DType, cfg.Data.Format,
		cfg.Data.Captions, cfg.Train.MaxLen, strings.Join(labels, ","))
	fmt.Fprintf(h, "pids=%s\n", strings.Join(ex.evalPIDs, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// zeroShotProtocols lists the protocols of mode that the zero-shot baseline measures: all but those marked
// evaluate.NoZeroShot (generation).
func zeroShotProtocols(mode EvalMode) ([]string, error) {
	ps, err := mode.Protocols()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range ps {
		if _, skip := p.(evaluate.NoZeroShot); !skip {
			names = append(names, p.Name())
		}
	}
	return names, nil
}

// addZeroShot stores the zero-shot baseline (the run's protocols on the pretrained model, no adapter, no image) in
// sum.Baselines[results.ZeroShot], from the shared cache or measured now (and cached). Nothing is added when no
// protocol of the mode is measured zero-shot.
func addZeroShot(ctx context.Context, cfg Config, s *session, cur resolved, ex *runExamples, sum *results.Summary, out io.Writer) error {
	protocols, err := zeroShotProtocols(cfg.Eval.Mode)
	if err != nil || len(protocols) == 0 {
		return err
	}
	key := zeroShotKey(cfg, cur, ex, protocols)
	dir := cfg.ZeroShotCache
	if dir == "" {
		dir = DefaultZeroShotCache()
	}
	path := filepath.Join(dir, key+".json")
	rec, err := readZeroShot(path, key)
	if err != nil {
		return err
	}
	if rec == nil {
		fmt.Fprintf(out, "zero-shot baseline (the pretrained model, no adapter) on %d problems, cached in %s…\n", len(ex.evalPIDs), path)
		zcfg := cfg
		zcfg.Eval.Mode = EvalMode(strings.Join(protocols, ","))
		ev, err := evaluateRun(ctx, zcfg, s, nil, nil, out)
		if err != nil {
			return fmt.Errorf("zero-shot baseline: %w", err)
		}
		rec = &zeroShotRecord{Key: key, Model: cur.Paths["model"], Problems: len(ex.evalPIDs), Scores: map[string]results.AccuracyTable{}}
		for _, r := range ev.results {
			if rec.Scores[r.Protocol], err = scoreRun(s.data.eval, r.Choices); err != nil {
				return fmt.Errorf("zero-shot baseline: %w", err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("zero-shot baseline: %w", err)
		}
		if err := results.WriteJSONAtomic(path, rec); err != nil {
			return fmt.Errorf("zero-shot baseline: %w", err)
		}
	} else {
		fmt.Fprintf(out, "zero-shot baseline: from %s\n", path)
	}
	for name, t := range rec.Scores {
		for p, label := range zeroShotLabels {
			if name == label {
				name = p
			}
		}
		row := map[string]float64{}
		for c, v := range t {
			row[c] = v.Accuracy
		}
		sum.SetBaseline(results.ZeroShot, name, row)
	}
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
