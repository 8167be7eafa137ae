package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/schollz/progressbar/v3"
)

// Files of a run folder.
const (
	ConfigFile      = "config.json"
	CheckpointFile  = "checkpoint.safetensors"
	AdapterFile     = "adapter.safetensors"
	PredictionsFile = "predictions.json"
	LossFigure      = "loss"  // .png and .svg
	TableFile       = "table" // .txt, .md, .json
)

// resolved is what config.json records beyond the flags: absolute paths, content digests, versions.
type resolved struct {
	Config
	Paths   map[string]string `json:"resolved_paths"`
	Digests map[string]string `json:"digests"`
	Backend string            `json:"backend_resolved"`
	// Command is the command line that started the run (the process's arguments).
	Command []string `json:"command"`
}

// Result is what a finished run reports.
type Result struct {
	Dir     string
	Summary *results.Summary
	Skipped bool // the folder was already complete
}

// Run performs the run cfg describes in its folder <RunsDir>/<ID>, resuming a partial one and skipping a complete
// one. Progress and tables go to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	id := cfg.ID()
	cfg.RunID = id
	dir := filepath.Join(cfg.RunsDir, id)
	if s, err := results.ReadSummary(dir); err == nil && s.Complete {
		fmt.Fprintf(out, "run %s is complete: skipping (delete %s to run it again)\n", id, dir)
		return &Result{Dir: dir, Summary: s, Skipped: true}, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	if cfg.Backend != "" {
		os.Setenv(device.EnvVar, cfg.Backend)
	}
	b, binfo, err := device.NewWithInfo()
	if err != nil {
		return nil, err
	}
	defer b.Finalize()
	fmt.Fprintf(out, "run %s (backend %s)\n", id, binfo)

	// Data, prompts and tokens.
	tok, err := tokenizer.Load(cfg.Tokenizer)
	if err != nil {
		return nil, err
	}
	data, err := loadData(cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "data: %d training and %d evaluation problems (%s)\n", len(data.train), len(data.eval), data.describe)

	if err := writeConfig(dir, cfg, b); err != nil {
		return nil, err
	}

	// Model and adapter.
	dtype := dtypes.Float32
	if cfg.DType == "bfloat16" {
		dtype = dtypes.BFloat16
	}
	start := time.Now()
	m, err := llama.Load(cfg.Model, dtype)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("tokenizer %s has %d tokens, model %s a vocabulary of %d", cfg.Tokenizer, tok.VocabSize(), cfg.Model, m.Config.VocabSize)
	}
	fmt.Fprintf(out, "model: %s (%s, %d layers, C=%d, %.3g M parameters) loaded in %.1fs\n", cfg.Model, m.Format,
		m.Config.NumLayers, m.Config.Dim, float64(m.Config.NumParams())/1e6, time.Since(start).Seconds())
	acfg := adapter.Config{Layers: min(cfg.Layers, m.Config.NumLayers), PromptLen: cfg.PromptLen, Gate: adapter.GateMode(cfg.Gate),
		Init: adapter.InitScheme(cfg.Init), PromptStd: cfg.PromptStd, GateStd: cfg.GateStd, Seed: cfg.Seed}

	var feats map[string][]float32
	if cfg.Modality == "multimodal" {
		var dim, scales int
		feats, scales, dim, err = imageFeatures(cfg, b, data, out)
		if err != nil {
			return nil, err
		}
		acfg.Visual = &adapter.VisualConfig{Scales: scales, FeatureDim: dim, Hidden: cfg.VisualHidden, Depth: cfg.VisualDepth}
	}
	a, err := adapter.New(m.Store, acfg, m.Config)
	if err != nil {
		return nil, err
	}
	counts := adapter.Count(acfg, m.Config)
	fmt.Fprintln(out, counts.Summary())

	ex, err := buildExamples(cfg, tok, data, feats)
	if err != nil {
		return nil, err
	}
	if ex.skipped > 0 || ex.cut > 0 {
		fmt.Fprintf(out, "max length %d: %d training problems do not fit even without context and are left out; %d evaluation prompts were shortened from the left\n",
			cfg.MaxLen, ex.skipped, ex.cut)
	}
	tc := train.PaperConfig()
	tc.Epochs, tc.WarmupEpochs, tc.BatchSize, tc.AccumSteps = cfg.Epochs, cfg.WarmupEpochs, cfg.Batch, cfg.Accum
	tc.BaseLR, tc.MinLR, tc.WeightDecay, tc.ClipNorm, tc.Seed = cfg.BaseLR, cfg.MinLR, cfg.WeightDecay, cfg.ClipNorm, cfg.Seed
	tc.MaxLen, tc.CheckpointEvery = cfg.MaxLen, cfg.CkptEvery
	tc.PadMultiple = 32
	tr, err := train.New(m, a, b, tc)
	if err != nil {
		return nil, err
	}

	summary := &results.Summary{RunID: id, Versions: results.CurrentVersions(), Backend: binfo.String(),
		Device: fmt.Sprintf("%s, %d CPU cores", b.Description(), runtime.NumCPU()), TrainableParams: int64(counts.Total()),
		Dir: dir}
	if err := summary.SetConfig(cfg); err != nil {
		return nil, err
	}
	summary.Split = evalSplitName(cfg)

	trainSecs, trainTokens, err := trainRun(ctx, cfg, dir, tr, ex.train, out)
	if err != nil {
		return nil, err
	}
	summary.Timings.TrainSeconds = trainSecs
	if trainSecs > 0 {
		summary.Timings.TokensPerSecond = float64(trainTokens) / trainSecs
	}
	if err := a.Save(filepath.Join(dir, AdapterFile), map[string]string{"run_id": id}); err != nil {
		return nil, err
	}

	// Evaluation.
	evalStart := time.Now()
	if valLoss, err := tr.EvalLoss(ex.evalTrain); err == nil {
		summary.FinalValLoss = results.Float(valLoss)
	} else {
		return nil, err
	}
	preds, err := evaluateRun(cfg, m, a, b, tok, ex, out)
	if err != nil {
		return nil, err
	}
	summary.Timings.EvalSeconds = time.Since(evalStart).Seconds()
	if err := results.WriteJSONAtomic(filepath.Join(dir, PredictionsFile), preds.byPID()); err != nil {
		return nil, err
	}
	if err := saveLetterPredictions(dir, preds); err != nil {
		return nil, err
	}
	summary.Accuracy, err = scoreRun(data.eval, preds.choice)
	if err != nil {
		return nil, err
	}
	summary.Baselines = baselines(data.train, data.eval)
	if ms, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile)); err == nil {
		if losses := results.EpochLosses(ms); len(losses) > 0 {
			summary.FinalTrainLoss = results.Float(losses[len(losses)-1])
		}
		if fig, err := results.LossCurve(id, ms); err == nil {
			if err := fig.Save(filepath.Join(dir, LossFigure)); err != nil {
				return nil, err
			}
		}
	}
	summary.Complete = true
	if err := results.WriteSummary(dir, summary); err != nil {
		return nil, err
	}
	var extra []results.MeasuredRow
	if preds.letter != nil {
		acc, err := scoreRun(data.eval, preds.letter)
		if err != nil {
			return nil, err
		}
		extra = append(extra, results.MeasuredRow{Name: id + " (letter scoring)", Accuracy: acc})
		if err := results.WriteJSONAtomic(filepath.Join(dir, "scores_letter.json"), acc); err != nil {
			return nil, err
		}
	}
	if err := printTable(out, dir, summary, preds.mode, extra); err != nil {
		return nil, err
	}
	// The checkpoint is only needed to resume; the adapter and summary are the run's record.
	_ = os.Remove(filepath.Join(dir, CheckpointFile))
	return &Result{Dir: dir, Summary: summary}, nil
}

// Validate checks the settings that can be checked without reading files.
func (c Config) Validate() error {
	switch {
	case c.Modality != "text" && c.Modality != "multimodal":
		return fmt.Errorf("-modality %q: want text or multimodal", c.Modality)
	case c.DType != "float32" && c.DType != "bfloat16":
		return fmt.Errorf("-dtype %q: want float32 or bfloat16", c.DType)
	case c.EvalMode != "letter" && c.EvalMode != "generate" && c.EvalMode != "both":
		return fmt.Errorf("-eval %q: want letter, generate or both", c.EvalMode)
	case c.Fallback != "random" && c.Fallback != "wrong":
		return fmt.Errorf("-fallback %q: want random or wrong", c.Fallback)
	case (c.TrainSplit == "") != (c.EvalSplit == ""):
		return fmt.Errorf("-train-split and -split go together (or neither, for the k-fold split)")
	case c.TrainSplit == "" && (c.Folds < 2 || c.EvalFold < 0 || c.EvalFold >= c.Folds):
		return fmt.Errorf("-fold %d of -folds %d: need folds ≥ 2 and 0 ≤ fold < folds", c.EvalFold, c.Folds)
	case c.Modality == "multimodal" && c.CLIP == "":
		return fmt.Errorf("-modality multimodal needs -clip (a CLIP checkpoint, or \"random\" for a random-weight encoder)")
	case c.Model == "" || c.Tokenizer == "" || c.Data == "":
		return fmt.Errorf("-model, -tokenizer and -data are required")
	}
	return nil
}

func writeConfig(dir string, cfg Config, b compute.Backend) error {
	r := resolved{Config: cfg, Paths: map[string]string{}, Digests: map[string]string{}, Backend: device.Config(), Command: os.Args}
	for name, p := range map[string]string{"data": cfg.Data, "problems": cfg.ProblemsFile, "splits": cfg.SplitsFile,
		"model": cfg.Model, "tokenizer": cfg.Tokenizer, "clip": cfg.CLIP} {
		if p == "" || p == "random" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err == nil {
			r.Paths[name] = abs
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			d, err := fileDigest(p)
			if err != nil {
				return fmt.Errorf("hashing %s: %w", p, err)
			}
			r.Digests[name] = d
		}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return results.WriteFileAtomic(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o644)
}

// trainRun trains from scratch or from the folder's checkpoint, logging metrics.jsonl and showing a progress bar.
func trainRun(ctx context.Context, cfg Config, dir string, tr *train.Trainer, examples []train.Example, out io.Writer) (seconds float64, tokens int, err error) {
	ckpt := filepath.Join(dir, CheckpointFile)
	metricsPath := filepath.Join(dir, results.MetricsFile)
	var pos train.Position
	if train.CheckpointExists(ckpt) {
		if pos, err = tr.LoadCheckpoint(ckpt); err != nil {
			return 0, 0, err
		}
		fmt.Fprintf(out, "resuming from %s: epoch %d, batch %d, step %d\n", ckpt, pos.Epoch, pos.Batch, pos.Step)
		if err := truncateMetrics(metricsPath, pos.Step); err != nil {
			return 0, 0, err
		}
	} else if err := os.Remove(metricsPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, err
	}
	if pos.Epoch >= cfg.Epochs {
		return 0, 0, nil
	}
	mw, err := results.OpenMetrics(metricsPath)
	if err != nil {
		return 0, 0, err
	}
	defer mw.Close()
	var bar *progressbar.ProgressBar
	start := time.Now()
	lastLoss := 0.0
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) {
			if bar == nil {
				bar = progressbar.NewOptions(s.StepsTotal, progressbar.OptionSetWriter(out), progressbar.OptionSetDescription("train"),
					progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(24),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }))
				_ = bar.Set(s.Step - 1)
			}
			tokens += s.Tokens
			if testAfterStep != nil {
				testAfterStep(s.Step)
			}
			lastLoss = s.Loss
			tps := float64(s.Tokens) / max(s.Seconds, 1e-9)
			bar.Describe(fmt.Sprintf("train e%d loss %.4f %5.0f tok/s", s.Epoch+1, s.Loss, tps))
			_ = bar.Set(s.Step)
			_ = mw.Append(results.Metric{Kind: results.KindStep, Step: results.Int(s.Step), Epoch: results.Float(s.Progress),
				Loss: results.Float(s.Loss), LR: results.Float(s.LR), TokensPerSecond: results.Float(tps)})
		},
		OnEpoch: func(e train.EpochInfo) error {
			return mw.Append(results.Metric{Kind: results.KindEpoch, Step: results.Int(e.Step), Epoch: results.Float(float64(e.Epoch + 1)),
				Loss: results.Float(e.TrainLoss)})
		},
		Checkpoint: func(p train.Position) error { return tr.SaveCheckpoint(ckpt, p) },
	}
	err = tr.Train(ctx, examples, pos, hooks)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return 0, 0, err
	}
	_ = lastLoss
	return time.Since(start).Seconds(), tokens, nil
}

// testAfterStep, when set by a test, is called after each optimizer step (to simulate a kill).
var testAfterStep func(step int)

// truncateMetrics drops metric lines logged after the checkpoint's step (a killed run logged steps it lost), so the
// resumed run's log has each step once.
func truncateMetrics(path string, step int) error {
	ms, err := results.ReadMetrics(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var keep []byte
	for _, m := range ms {
		if m.Step != nil && *m.Step > step {
			continue
		}
		line, _ := json.Marshal(m)
		keep = append(append(keep, line...), '\n')
	}
	return results.WriteFileAtomic(path, keep, 0o644)
}

// printTable prints the category table beside the paper's rows and saves it in the run folder.
func printTable(out io.Writer, dir string, s *results.Summary, mode string, extra []results.MeasuredRow) error {
	rows := append([]results.MeasuredRow{results.SummaryRow(s)}, extra...)
	rows = append(rows, baselineRows(s)...)
	t := results.ScienceQATable(fmt.Sprintf("ScienceQA accuracy (%%), %s, %s scoring", s.Split, mode), rows, results.PaperScienceQARows())
	if err := t.Render(out, results.Text); err != nil {
		return err
	}
	return t.Save(filepath.Join(dir, TableFile))
}
