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

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/gomlx/core/tensors"
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
	// protocols were values name them by label ("letter scoring", ...: zeroShotLabels); readZeroShot renames them.
	Scores map[string]results.AccuracyTable `json:"scores"`
	// Predictions holds, per protocol (as Scores), the pretrained model's choice for every problem (pid → option
	// index): what a paired comparison of a trained run against zero-shot needs. Records written before it was
	// kept lack it; evaluating the base model (scienceqa eval without -adapter) fills it in.
	Predictions map[string]map[string]int `json:"predictions,omitempty"`
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

// zeroShotEntry is the cache file of a run's zero-shot baseline: the protocols it measures, its key and path, and
// the record there (nil when there is none yet).
type zeroShotEntry struct {
	protocols []string
	key, dir  string
	path      string
	rec       *zeroShotRecord
}

// lookupZeroShot finds the zero-shot cache entry of cfg's inputs (cur) and evaluation problems (ex); nil when no
// protocol of the mode is measured zero-shot.
func lookupZeroShot(cfg Config, cur resolved, ex *runExamples) (*zeroShotEntry, error) {
	protocols, err := zeroShotProtocols(cfg.Eval.Mode)
	if err != nil || len(protocols) == 0 {
		return nil, err
	}
	z := &zeroShotEntry{protocols: protocols, key: zeroShotKey(cfg, cur, ex, protocols), dir: cfg.ZeroShotCache}
	if z.dir == "" {
		z.dir = DefaultZeroShotCache()
	}
	z.path = filepath.Join(z.dir, z.key+".json")
	if z.rec, err = readZeroShot(z.path, z.key); err != nil {
		return nil, err
	}
	return z, nil
}

// store scores choices (by protocol) into the entry's record, a new one when there is none (model names the
// model file), and writes it.
func (z *zeroShotEntry) store(model string, problems []*scienceqa.Problem, pids int, choices map[string]map[string]int) error {
	if z.rec == nil {
		z.rec = &zeroShotRecord{Key: z.key, Model: model, Problems: pids}
	}
	if err := z.rec.setPredictions(problems, z.protocols, choices); err != nil {
		return err
	}
	if err := os.MkdirAll(z.dir, 0o755); err != nil {
		return fmt.Errorf("zero-shot baseline: %w", err)
	}
	if err := results.WriteJSONAtomic(z.path, z.rec); err != nil {
		return fmt.Errorf("zero-shot baseline: %w", err)
	}
	return nil
}

// addZeroShot stores the zero-shot baseline (the run's protocols on the pretrained model, no adapter, no image) in
// sum.Baselines[results.ZeroShot], from the shared cache or measured now (and cached). Nothing is added when no
// protocol of the mode is measured zero-shot. reuse, when not nil, is the trained run's runner, whose adapter
// zeroGatesExact accepted: the baseline is measured on its executables with the gates set to zero (and restored),
// instead of compiling the base model's graphs.
func addZeroShot(ctx context.Context, cfg Config, s *session, cur resolved, ex *runExamples, sum *results.Summary, reuse *evaluate.Runner, out io.Writer) error {
	z, err := lookupZeroShot(cfg, cur, ex)
	if err != nil || z == nil {
		return err
	}
	if z.rec == nil {
		fmt.Fprintf(out, "zero-shot baseline (the pretrained model, no adapter) on %d problems, cached in %s…\n", len(ex.evalPIDs), z.path)
		zcfg := cfg
		zcfg.Eval.Mode = EvalMode(strings.Join(z.protocols, ","))
		var ev *evaluation
		if reuse != nil {
			ev, err = zeroShotOn(ctx, zcfg, s, reuse, out)
		} else {
			ev, err = evaluateRun(ctx, zcfg, s, nil, nil, out)
		}
		if err != nil {
			return fmt.Errorf("zero-shot baseline: %w", err)
		}
		sum.Profile = append(sum.Profile, ev.profile("zero-shot ")...)
		if err := z.store(cur.Paths["model"], s.data.eval, len(ex.evalPIDs), ev.choices()); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "zero-shot baseline: from %s\n", z.path)
	}
	for name, t := range z.rec.Scores {
		row := map[string]float64{}
		for c, v := range t {
			row[c] = v.Accuracy
		}
		sum.SetBaseline(results.ZeroShot, name, row)
	}
	return nil
}

// zeroGatesExact reports whether adapter a with every gate at zero computes exactly the base model: each gate
// scales its layer's prompt attention (tanh(0) = 0 for head-tanh gates), so nothing is added to the base model's
// attention, whatever the prompts and the visual token. V2's biases, scales and norms change the base layers
// themselves: not so.
func zeroGatesExact(a *adapter.Adapter) bool { return a != nil && a.V2 == nil && a.Gates != nil }

// zeroShotOn answers zcfg's protocols on the base model through runner r (a trained run's, its adapter accepted by
// zeroGatesExact) with the adapter's gates set to zero, then restores them. No image features: the baseline is the
// text-only pretrained model.
func zeroShotOn(ctx context.Context, zcfg Config, s *session, r *evaluate.Runner, out io.Writer) (_ *evaluation, err error) {
	protocols, err := zcfg.Eval.Mode.Protocols()
	if err != nil {
		return nil, err
	}
	env, err := evalEnv(zcfg, s, r.Adapter, s.data.eval, nil)
	if err != nil {
		return nil, err
	}
	env.Runner = r
	gates := r.Adapter.Gates
	trained, err := gates.Value()
	if err != nil {
		return nil, fmt.Errorf("zero-shot baseline: %w", err)
	}
	keep, err := tensors.CopyFlatData[float32](trained)
	if err != nil {
		return nil, fmt.Errorf("zero-shot baseline: %w", err)
	}
	dims := gates.Shape().Dimensions
	if err := gates.SetValue(tensors.FromFlatDataAndDimensions(make([]float32, len(keep)), dims...)); err != nil {
		return nil, fmt.Errorf("zero-shot baseline: %w", err)
	}
	defer func() {
		if rerr := gates.SetValue(tensors.FromFlatDataAndDimensions(keep, dims...)); rerr != nil && err == nil {
			err = fmt.Errorf("zero-shot baseline: restoring the gates: %w", rerr)
		}
	}()
	fmt.Fprintln(out, "zero-shot baseline: the trained graphs with zero gates (exactly the base model)")
	return runProtocols(ctx, zcfg, env, protocols, out)
}

// choices returns the evaluation's choices by protocol name (pid → option index).
func (ev *evaluation) choices() map[string]map[string]int {
	by := map[string]map[string]int{}
	for _, r := range ev.results {
		by[r.Protocol] = r.Choices
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
func storeZeroShot(cfg Config, s *session, ex *runExamples, ev *evaluation, out io.Writer) error {
	if ps, err := zeroShotProtocols(cfg.Eval.Mode); err != nil || len(ps) == 0 {
		return err // nothing measured zero-shot: no inputs to digest
	}
	cur, err := currentRecord(cfg, s.modelPath, s.tokPath, "")
	if err != nil {
		return err
	}
	z, err := lookupZeroShot(cfg, cur, ex)
	if err != nil || z == nil {
		return err
	}
	if err := z.store(cur.Paths["model"], s.data.eval, len(ex.evalPIDs), ev.choices()); err != nil {
		return err
	}
	fmt.Fprintf(out, "zero-shot baseline with per-problem choices: %s\n", z.path)
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
	if err := rec.nameProtocols(); err != nil {
		return nil, fmt.Errorf("zero-shot baseline %s: %w", path, err)
	}
	return &rec, nil
}

// nameProtocols renames the protocols of a record written before protocols were values (scores and choices under
// their labels, zeroShotLabels) to their names, so that every reader sees one naming. A record naming a protocol
// both ways is refused: which of the two is the measurement would be a guess.
func (rec *zeroShotRecord) nameProtocols() error {
	for name, label := range zeroShotLabels {
		if err := rename(rec.Scores, label, name); err != nil {
			return fmt.Errorf("scores: %w", err)
		}
		if err := rename(rec.Predictions, label, name); err != nil {
			return fmt.Errorf("predictions: %w", err)
		}
	}
	return nil
}

// rename moves m[from] to m[to] (nothing when m has no from).
func rename[V any](m map[string]V, from, to string) error {
	v, ok := m[from]
	if !ok {
		return nil
	}
	if _, dup := m[to]; dup {
		return fmt.Errorf("protocol %s recorded both as %q and as %q", to, from, to)
	}
	m[to] = v
	delete(m, from)
	return nil
}
