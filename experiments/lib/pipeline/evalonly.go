package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/results"
)

// LoadAdapter reads an adapter into m's store from any format adapter.Open reads: a run folder, the project's
// safetensors file, the official LLaMA-Adapter v1 release .pth, a peft AdaptionPrompt folder or a litgpt
// lit_model.pth.adapter, each checked against the model.
func LoadAdapter(path string, m *llama.Model) (*adapter.Adapter, error) {
	return adapter.Open(path, m.Store, m.Config, adapter.OpenOptions{})
}

// Evaluate scores a saved adapter (or the base model when adapterPath is "") on cfg's evaluation problems, without
// training, and writes predictions.json, summary.json and the table to outDir. One process at a time works in
// outDir (the same lock as a run folder; -wait waits for the holder).
func Evaluate(ctx context.Context, cfg Config, adapterPath, outDir string, out io.Writer) (sum *results.Summary, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rf, err := openRunFolder(ctx, cfg, outDir, out)
	if err != nil {
		return nil, err
	}
	defer rf.close(&err)
	return evaluateLocked(ctx, cfg, adapterPath, outDir, out)
}

func evaluateLocked(ctx context.Context, cfg Config, adapterPath, outDir string, out io.Writer) (*results.Summary, error) {
	s, err := open(cfg, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var a *adapter.Adapter
	name := "base model"
	if adapterPath != "" {
		if a, err = LoadAdapter(adapterPath, s.model); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", adapterPath, err)
		}
		name = adapterPath
		fmt.Fprintln(out, adapter.Count(a.Config, s.model.Config).Summary())
	}
	var feats map[string][]float32
	if a != nil && a.Config.Visual != nil {
		var visual *adapter.VisualConfig
		if feats, visual, err = s.features(out); err != nil {
			return nil, err
		}
		if want := a.Config.Visual; visual.Scales != want.Scales || visual.FeatureDim != want.FeatureDim {
			return nil, fmt.Errorf("adapter %s expects %d×%d image features; -clip %s gives %d×%d", adapterPath,
				want.Scales, want.FeatureDim, cfg.Vision.CLIP, visual.Scales, visual.FeatureDim)
		}
	}
	ex, err := s.examples(feats, out)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	ev, err := evaluateRun(ctx, cfg, s, a, ex.features, out)
	if err != nil {
		return nil, err
	}
	if a == nil && cfg.Eval.ZeroShot {
		// The base model's evaluation is the zero-shot baseline: keep it (with its per-problem choices) in the
		// shared cache, so paired comparisons of trained runs against it can be computed (-zero-shot, as for runs).
		if err := storeZeroShot(cfg, s, ex, ev, out); err != nil {
			return nil, err
		}
	}
	sum := &results.Summary{RunID: "eval: " + name, Versions: results.CurrentVersions(), Backend: s.info.String(),
		Environment: environment(s.info)}
	sum.Timings.EvalSeconds = time.Since(start).Seconds()
	sum.Profile = ev.profile("")
	if err := sum.SetConfig(cfg); err != nil {
		return nil, err
	}
	sum.Split = evalSplitName(cfg)
	sum.Truncation = &ex.trunc
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	return sum, writeResults(outDir, sum, ev, s.data, out) // the record stage a run shares
}

func evalSplitName(cfg Config) string {
	if cfg.Data.EvalSplit != "" {
		return cfg.Data.EvalSplit
	}
	return fmt.Sprintf("fold %d of %d (seed %d)", cfg.Data.EvalFold, cfg.Data.Folds, cfg.Data.FoldSeed)
}
