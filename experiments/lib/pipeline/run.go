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
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/results"
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

// resolved is what config.json records beyond the settings: absolute paths, content digests, the backend.
type resolved struct {
	record
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

// Run performs the run cfg describes in its folder <RunsDir>/<ID>, resuming a partial one. A complete one is not
// run again (unless cfg.Force): its recorded table is printed. Progress and tables go to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	id := cfg.ID()
	cfg.RunID = id
	dir := filepath.Join(cfg.RunsDir, id)
	rf, err := openRunFolder(ctx, cfg, dir, out)
	if err != nil {
		return nil, err
	}
	defer rf.close(&err)
	done, complete, err := rf.complete()
	if err != nil {
		return nil, err
	}
	if complete && cfg.Force {
		fmt.Fprintf(out, "-force: deleting the complete run %s to run it again\n", dir)
		if err := rf.clearForRerun(); err != nil {
			return nil, err
		}
		complete = false
	}
	// The folder's record is checked against the current inputs before anything in it is written.
	modelPath, tokPath, err := resolveModel(cfg, out)
	if err != nil {
		return nil, err
	}
	cur, err := currentRecord(cfg, modelPath, tokPath, "")
	if err != nil {
		return nil, err
	}
	forced, err := rf.checkRecord(cfg, cur, out)
	if err != nil {
		return nil, err
	}
	if complete {
		return &Result{Dir: dir, Summary: done, Skipped: true}, printRecorded(out, dir, done, !cfg.SkipTable)
	}
	fmt.Fprintf(out, "run %s in %s\n", id, dir)
	s, err := open(cfg, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	cur.Backend = s.info.Config
	if err := rf.writeRecord(cur, forced); err != nil {
		return nil, err
	}

	var feats map[string][]float32
	var visual *adapter.VisualConfig
	if cfg.Vision.Modality == Multimodal {
		if feats, visual, err = s.features(out); err != nil {
			return nil, err
		}
	}
	acfg := cfg.adapterConfig(s.model.Config.NumLayers, visual)
	a, err := adapter.New(s.model.Store, acfg, s.model.Config)
	if err != nil {
		return nil, err
	}
	counts := adapter.Count(acfg, s.model.Config)
	fmt.Fprintln(out, counts.Summary())
	ex, err := s.examples(feats, out)
	if err != nil {
		return nil, err
	}
	place, err := device.NewPlacement(s.backend, cfg.Devices, false) // -devices: the batch sharded over a mesh
	if err != nil {
		return nil, err
	}
	tr, err := train.NewPlaced(s.model, a, s.backend, cfg.trainConfig(), place)
	if err != nil {
		return nil, err
	}

	summary := &results.Summary{RunID: id, Versions: results.CurrentVersions(), Backend: s.info.String(),
		Device: fmt.Sprintf("%s, %d CPU cores", s.backend.Description(), runtime.NumCPU()), TrainableParams: int64(counts.Total()),
		Environment: environment(s.info), Dir: dir}
	if err := summary.SetConfig(cfg); err != nil {
		return nil, err
	}
	summary.Split = evalSplitName(cfg)
	summary.SkippedImages = s.data.skippedImages
	summary.Vision = s.data.vision

	tres, err := trainRun(ctx, cfg, dir, tr, ex.train, out)
	if errors.Is(err, train.ErrNonFinite) {
		return nil, fmt.Errorf("run %s: %w\n(in the run folder: %s)", dir, err, rf.keptMessage())
	} else if err != nil {
		return nil, err
	}
	summary.Timings.TrainSeconds = tres.seconds
	if tres.seconds > 0 {
		summary.Timings.TokensPerSecond = float64(tres.tokens) / tres.seconds
	}
	summary.FinalTrainLoss = tres.finalLoss
	if err := a.Save(filepath.Join(dir, AdapterFile), map[string]string{"run_id": id}); err != nil {
		return nil, err
	}
	if err := saveGatesFigure(dir, id); err != nil {
		return nil, err
	}

	// Evaluation.
	evalStart := time.Now()
	fmt.Fprintf(out, "validation loss on %d evaluation problems…\n", len(ex.evalTrain))
	valLoss, err := tr.EvalLoss(ex.evalTrain)
	if err != nil {
		return nil, err
	}
	summary.FinalValLoss = results.Float(valLoss)
	preds, err := evaluateRun(cfg, s.model, a, s.backend, s.tok, ex, out)
	if err != nil {
		return nil, err
	}
	summary.Timings.EvalSeconds = time.Since(evalStart).Seconds()
	if err := results.WriteJSONAtomic(filepath.Join(dir, PredictionsFile), preds.byPID()); err != nil {
		return nil, err
	}
	if err := saveExtraPredictions(dir, preds); err != nil {
		return nil, err
	}
	if summary.Accuracy, err = scoreRun(s.data.eval, preds.choice); err != nil {
		return nil, err
	}
	summary.Baselines = baselines(s.data.train, s.data.eval)
	if cfg.Eval.ZeroShot {
		zs, err := zeroShotBaselines(cfg, s, cur, ex, out)
		if err != nil {
			return nil, err
		}
		for name, row := range zs {
			summary.Baselines[name] = row
		}
	}
	if ms, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile)); err == nil {
		if summary.FinalTrainLoss == nil {
			// Resumed after its last epoch: no epoch ended in this process, the log has the last one.
			if losses := results.EpochLosses(ms); len(losses) > 0 {
				summary.FinalTrainLoss = results.Float(losses[len(losses)-1])
			}
		}
		if fig, err := results.LossCurve(id, ms); err == nil {
			if err := fig.Save(filepath.Join(dir, LossFigure)); err != nil {
				return nil, err
			}
		}
	}
	summary.Scorings = map[string]results.AccuracyTable{}
	extra, err := extraRows(dir, id, s.data.eval, preds, summary.Scorings)
	if err != nil {
		return nil, err
	}
	summary.Complete = true
	if err := results.WriteSummary(dir, summary); err != nil {
		return nil, err
	}
	t := runTable(summary, string(preds.mode), extra)
	if err := t.Render(out, results.Text); err != nil {
		return nil, err
	}
	if err := t.Save(filepath.Join(dir, TableFile)); err != nil {
		return nil, err
	}
	if err := rf.markComplete(); err != nil {
		return nil, err
	}
	// The checkpoint is only needed to resume; the adapter and summary are the run's record.
	if err := os.Remove(filepath.Join(dir, CheckpointFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	return &Result{Dir: dir, Summary: summary}, nil
}

// environment is the recording machine and build for summary.json.
func environment(info device.Info) *results.Environment {
	plugin := ""
	if info.Plugin != nil {
		plugin = info.Plugin.Package + " " + info.Plugin.Version
	}
	if info.PJRTAPIVersion != "" {
		plugin = strings.TrimSpace(plugin + " (PJRT " + info.PJRTAPIVersion + ")")
	}
	return results.CurrentEnvironment(info.Config, plugin)
}

// printRecorded says that a run is complete and, with table, prints its table as it was recorded and how to run
// it afresh.
func printRecorded(out io.Writer, dir string, s *results.Summary, table bool) error {
	when := ""
	if st, err := os.Stat(filepath.Join(dir, results.SummaryFile)); err == nil {
		when = " on " + st.ModTime().Format("2006-01-02 15:04")
	}
	fmt.Fprintf(out, "run %s is complete: skipping it (recorded%s in %s", s.RunID, when, dir)
	if s.Environment != nil && s.Environment.CPU != "" {
		fmt.Fprintf(out, " on %s, %s", s.Environment.CPU, s.Environment.Backend)
	} else if s.Backend != "" {
		fmt.Fprintf(out, ", backend %s", s.Backend)
	}
	fmt.Fprintln(out, ")")
	if !table {
		return nil
	}
	var cfg Config
	mode := ""
	if err := s.DecodeConfig(&cfg); err == nil {
		mode = string(cfg.Eval.Mode)
	}
	var extra []results.MeasuredRow
	for _, x := range extraScoreFiles {
		var acc results.AccuracyTable
		if data, err := os.ReadFile(filepath.Join(dir, x.file)); err == nil && json.Unmarshal(data, &acc) == nil {
			extra = append(extra, results.MeasuredRow{Name: s.RunID + " (" + x.label + ")", Accuracy: acc})
		}
	}
	if err := runTable(s, mode, extra).Render(out, results.Text); err != nil {
		return err
	}
	fmt.Fprintln(out, "To run it afresh: -runs DIR (a fresh folder of runs) or -force (deletes this folder first).")
	return nil
}

// trained is what training reports: time, tokens and the last epoch's mean loss (from the trainer's OnEpoch
// hook; nil when no epoch ended in this process).
type trained struct {
	seconds   float64
	tokens    int
	finalLoss *float64
}

// trainRun trains from scratch or from the folder's checkpoint, logging metrics.jsonl and showing a progress bar.
func trainRun(ctx context.Context, cfg Config, dir string, tr *train.Trainer, examples []train.Example, out io.Writer) (res trained, err error) {
	ckpt := filepath.Join(dir, CheckpointFile)
	metricsPath := filepath.Join(dir, results.MetricsFile)
	var pos train.Position
	if train.CheckpointExists(ckpt) {
		if pos, err = tr.LoadCheckpoint(ckpt); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "resuming from %s: epoch %d, batch %d, step %d\n", ckpt, pos.Epoch, pos.Batch, pos.Step)
		if err := truncateMetrics(metricsPath, pos.Step); err != nil {
			return res, err
		}
	} else if err := os.Remove(metricsPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	// Training time and tokens are totals over every process of the run: continue from what the log kept.
	baseSeconds, baseTokens := 0.0, 0
	if pos.Step > 0 {
		if ms, err := results.ReadMetrics(metricsPath); err == nil {
			baseSeconds, baseTokens = results.RunTotals(ms)
		}
	}
	res.tokens = baseTokens
	if pos.Epoch >= cfg.Train.EpochCount() {
		res.seconds = baseSeconds
		return res, nil
	}
	mw, err := results.OpenMetrics(metricsPath)
	if err != nil {
		return res, err
	}
	defer mw.Close()
	// A metrics line that cannot be written stops the run: OnStep cannot return an error, so it records it and
	// cancels; the checkpoint hook refuses to save a state whose log lost a line.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var logErr error
	appendLine := func(m results.Metric) error {
		err := mw.Append(m)
		if err == nil && testMetricsError != nil {
			err = testMetricsError(m)
		}
		if err != nil && logErr == nil {
			logErr = err
			cancel()
		}
		return err
	}
	var bar *progress
	start := time.Now()
	fmt.Fprintf(out, "training %d examples for %g epochs; compiling the training step…\n", len(examples), cfg.Train.Epochs)
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) {
			if bar == nil {
				fmt.Fprintf(out, "first step done in %.1fs (compiled)\n", time.Since(start).Seconds())
				bar = newProgress(out, "train", s.StepsTotal, s.Step-1)
			}
			res.tokens += s.Tokens
			if testAfterStep != nil {
				testAfterStep(s.Step)
			}
			tps := float64(s.Tokens) / max(s.Seconds, 1e-9)
			bar.set(s.Step, fmt.Sprintf("e%d loss %.4f %5.0f tok/s", s.Epoch+1, s.Loss, tps))
			if logErr == nil {
				_ = appendLine(results.Metric{Kind: results.KindStep, Step: results.Int(s.Step), Epoch: results.Float(s.Progress),
					Loss: results.Float(s.Loss), LR: results.Float(s.LR), TokensPerSecond: results.Float(tps),
					TrainSeconds: results.Float(baseSeconds + time.Since(start).Seconds()), TrainTokens: results.Int(res.tokens)})
			}
		},
		OnEpoch: func(e train.EpochInfo) error {
			if logErr != nil {
				return logErr
			}
			res.finalLoss = results.Float(e.TrainLoss)
			return appendLine(results.Metric{Kind: results.KindEpoch, Step: results.Int(e.Step), Epoch: results.Float(float64(e.Epoch + 1)),
				Loss: results.Float(e.TrainLoss), TrainSeconds: results.Float(baseSeconds + time.Since(start).Seconds()),
				TrainTokens: results.Int(res.tokens)})
		},
		Checkpoint: func(p train.Position) error {
			if logErr != nil {
				return logErr
			}
			return tr.SaveCheckpoint(ckpt, p)
		},
	}
	err = tr.Train(ctx, examples, pos, hooks)
	if bar != nil {
		bar.finish()
	}
	if logErr != nil {
		return res, fmt.Errorf("training stopped: %w", logErr)
	}
	if err != nil {
		return res, err
	}
	if err := mw.Close(); err != nil {
		return res, err
	}
	res.seconds = baseSeconds + time.Since(start).Seconds()
	return res, nil
}

// testAfterStep, when set by a test, is called after each optimizer step (to simulate a kill).
var testAfterStep func(step int)

// testMetricsError, when set by a test, is called after each metrics line is written; an error it returns is
// handled as the line's write error (to simulate a full disk).
var testMetricsError func(m results.Metric) error

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

// runTable is the category table of a run beside the paper's rows and the same problems' baselines.
func runTable(s *results.Summary, mode string, extra []results.MeasuredRow) *results.Table {
	rows := append([]results.MeasuredRow{results.SummaryRow(s)}, extra...)
	rows = append(rows, baselineRows(s)...)
	t := results.ScienceQATable(fmt.Sprintf("ScienceQA accuracy (%%), %s, %s scoring", s.Split, mode), rows, results.PaperScienceQARows())
	if s.Vision != "" {
		t.Notes = append(t.Notes, "Image features: "+s.Vision+".")
	}
	if n := len(s.SkippedImages); n > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("%d problems ran without image features: their image did not decode (-skip-bad-images); pids %s.",
			n, strings.Join(s.SkippedImages, ", ")))
	}
	return t
}
