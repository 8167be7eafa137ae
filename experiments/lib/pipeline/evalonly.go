package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute/dtypes"
)

// LoadAdapter reads an adapter into m's store: the project's safetensors file (adapter.safetensors, or a run
// folder holding one), or the official LLaMA-Adapter v1 release .pth (adapter_query.weight + per-head gates).
func LoadAdapter(path string, m *llama.Model) (*adapter.Adapter, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, AdapterFile)
	}
	if strings.HasSuffix(strings.ToLower(path), ".pth") {
		return adapter.ImportOfficial(path, m.Store, m.Config)
	}
	return adapter.Load(path, m.Store, m.Config)
}

// Evaluate scores a saved adapter (or the base model when adapterPath is "") on cfg's evaluation problems, without
// training, and writes predictions.json, summary.json and the table to outDir.
func Evaluate(ctx context.Context, cfg Config, adapterPath, outDir string, out io.Writer) (*results.Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backend != "" {
		os.Setenv(device.EnvVar, cfg.Backend)
	}
	b, err := device.New()
	if err != nil {
		return nil, err
	}
	defer b.Finalize()
	tok, err := tokenizer.Load(cfg.Tokenizer)
	if err != nil {
		return nil, err
	}
	data, err := loadData(cfg)
	if err != nil {
		return nil, err
	}
	dtype := dtypes.Float32
	if cfg.DType == "bfloat16" {
		dtype = dtypes.BFloat16
	}
	m, err := llama.Load(cfg.Model, dtype)
	if err != nil {
		return nil, err
	}
	var a *adapter.Adapter
	name := "base model"
	if adapterPath != "" {
		if a, err = LoadAdapter(adapterPath, m); err != nil {
			return nil, err
		}
		name = adapterPath
		fmt.Fprintln(out, adapter.Count(a.Config, m.Config).Summary())
	}
	var feats map[string][]float32
	if a != nil && a.Config.Visual != nil {
		var scales, dim int
		if feats, scales, dim, err = imageFeatures(cfg, b, data, out); err != nil {
			return nil, err
		}
		if scales != a.Config.Visual.Scales || dim != a.Config.Visual.FeatureDim {
			return nil, fmt.Errorf("adapter %s expects %d×%d image features; -clip %s gives %d×%d", adapterPath,
				a.Config.Visual.Scales, a.Config.Visual.FeatureDim, cfg.CLIP, scales, dim)
		}
	}
	ex, err := buildExamples(cfg, tok, data, feats)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	preds, err := evaluateRun(cfg, m, a, b, tok, ex, out)
	if err != nil {
		return nil, err
	}
	s := &results.Summary{RunID: "eval: " + name, Complete: true, Versions: results.CurrentVersions(), Backend: device.Config()}
	s.Timings.EvalSeconds = time.Since(start).Seconds()
	if err := s.SetConfig(cfg); err != nil {
		return nil, err
	}
	s.Split = evalSplitName(cfg)
	if s.Accuracy, err = scoreRun(data.eval, preds.choice); err != nil {
		return nil, err
	}
	s.Baselines = baselines(data.train, data.eval)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	if err := results.WriteJSONAtomic(filepath.Join(outDir, PredictionsFile), preds.choice); err != nil {
		return nil, err
	}
	if err := results.WriteSummary(outDir, s); err != nil {
		return nil, err
	}
	return s, printTable(out, outDir, s, preds.mode, nil)
}

func evalSplitName(cfg Config) string {
	if cfg.EvalSplit != "" {
		return cfg.EvalSplit
	}
	return fmt.Sprintf("fold %d of %d (seed %d)", cfg.EvalFold, cfg.Folds, cfg.FoldSeed)
}
