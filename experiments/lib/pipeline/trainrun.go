package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gomlx/compute/shapes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/results"
)

// trained is what training reports: time, tokens and the last epoch's mean loss (from the trainer's OnEpoch
// hook; nil when no epoch ended in this process).
type trained struct {
	seconds   float64
	tokens    int
	finalLoss *float64
}

// trainRun trains from scratch or from the folder's checkpoint, logging metrics.jsonl and showing a progress bar.
func trainRun(ctx context.Context, cfg Config, dir string, tr *train.Trainer, examples []train.Example, out io.Writer) (trained, error) {
	ckpt := filepath.Join(dir, CheckpointFile)
	metricsPath := filepath.Join(dir, results.MetricsFile)
	pos, err := resumePosition(tr, ckpt, metricsPath, out)
	if err != nil {
		return trained{}, err
	}
	// Training time and tokens are totals over every process of the run: continue from what the log kept.
	l := &trainLog{cfg: cfg, out: out, start: time.Now(), gates: func() ([][]float64, error) { return appliedGates(tr.Adapter) }}
	if pos.Step > 0 {
		if ms, err := results.ReadMetrics(metricsPath); err == nil {
			l.baseSeconds, l.res.tokens = results.RunTotals(ms)
		}
	}
	if pos.Epoch >= cfg.Train.EpochCount() {
		l.res.seconds = l.baseSeconds
		return l.res, nil
	}
	if l.mw, err = results.OpenMetrics(metricsPath); err != nil {
		return l.res, err
	}
	defer l.mw.Close()
	// A metrics line that cannot be written stops the run: OnStep cannot return an error, so it records it and
	// cancels; the checkpoint hook refuses to save a state whose log lost a line.
	ctx, l.cancel = context.WithCancel(ctx)
	defer l.cancel()
	fmt.Fprintf(out, "training %d examples for %g epochs\n", len(examples), cfg.Train.Epochs)
	tr.Counter.OnCompile = func(name string, ss []shapes.Shape) {
		fmt.Fprintf(out, "\ncompiling the %s (shape %s)…\n", name, train.DescribeShapes(ss))
	}
	defer func() { tr.Counter.OnCompile = nil }()
	hooks := train.Hooks{OnStep: l.onStep, OnEpoch: l.onEpoch, Checkpoint: func(p train.Position) error {
		if l.err != nil {
			return l.err
		}
		return tr.SaveCheckpoint(ckpt, p)
	}}
	err = tr.Train(ctx, examples, pos, hooks)
	if l.bar != nil {
		l.bar.finish() // at 100 % only when every step ran
	}
	if l.err != nil {
		return l.res, fmt.Errorf("training stopped: %w", l.err)
	}
	if err != nil {
		return l.res, err
	}
	if err := l.mw.Close(); err != nil {
		return l.res, err
	}
	l.res.seconds = l.baseSeconds + time.Since(l.start).Seconds()
	return l.res, nil
}

// resumePosition loads the folder's checkpoint (dropping the metric lines logged after it), or starts afresh
// (removing a log without a checkpoint).
func resumePosition(tr *train.Trainer, ckpt, metricsPath string, out io.Writer) (train.Position, error) {
	if !train.CheckpointExists(ckpt) {
		if err := os.Remove(metricsPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return train.Position{}, err
		}
		return train.Position{}, nil
	}
	pos, err := tr.LoadCheckpoint(ckpt)
	if err != nil {
		return pos, err
	}
	fmt.Fprintf(out, "resuming from %s: epoch %d, batch %d, step %d\n", ckpt, pos.Epoch, pos.Batch, pos.Step)
	return pos, truncateMetrics(metricsPath, pos.Step)
}

// trainLog is the training hooks' state: the metrics log, the progress bar and the totals.
type trainLog struct {
	cfg         Config
	out         io.Writer
	mw          *results.MetricsWriter
	bar         *progress
	start       time.Time
	baseSeconds float64 // training time of earlier processes of the run
	res         trained
	err         error // the first metrics write error (it cancels training)
	cancel      context.CancelFunc
	// gates reads the adapter's applied gates for the step lines that log them (gateStep); nil after a failure.
	gates func() ([][]float64, error)
}

// appendLine logs one metrics line; the first failure is kept and stops training.
func (l *trainLog) appendLine(m results.Metric) error {
	err := l.mw.Append(m)
	if err != nil && l.err == nil {
		l.err = err
		l.cancel()
	}
	return err
}

func (l *trainLog) onStep(s train.StepInfo) {
	if l.bar == nil {
		fmt.Fprintf(l.out, "first step done in %.1fs (compiled)\n", time.Since(l.start).Seconds())
		l.bar = newProgress(l.out, "train", s.StepsTotal, s.Step-1)
	}
	l.res.tokens += s.Tokens
	if l.cfg.OnStep != nil {
		l.cfg.OnStep(s)
	}
	tps := float64(s.Tokens) / max(s.Seconds, 1e-9)
	l.bar.set(s.Step, fmt.Sprintf("e%d loss %.4f %5.0f tok/s", s.Epoch+1, s.Loss, tps))
	if l.err == nil {
		_ = l.appendLine(results.Metric{Kind: results.KindStep, Step: results.Int(s.Step), Epoch: results.Float(s.Progress),
			Loss: results.Float(s.Loss), LR: results.Float(s.LR), TokensPerSecond: results.Float(tps),
			TrainSeconds: results.Float(l.baseSeconds + time.Since(l.start).Seconds()), TrainTokens: results.Int(l.res.tokens),
			Gates: l.stepGates(s)})
	}
}

// gateLines is about how many step lines of a run log the gates (GateTrace draws them): enough for a smooth
// picture, few enough that a long run's log stays small.
const gateLines = 50

// gateStep reports whether step (of total) logs the gates: the first, the last and every total/gateLines-th.
func gateStep(step, total int) bool {
	return step == 1 || step == total || step%max(1, total/gateLines) == 0
}

// stepGates reads the gates for a step line that logs them (nil otherwise). The gates are a diagnostic: a failure
// to read them is reported once and stops only their logging, not the run.
func (l *trainLog) stepGates(s train.StepInfo) [][]float32 {
	if l.gates == nil || !gateStep(s.Step, s.StepsTotal) {
		return nil
	}
	g, err := l.gates()
	if err != nil {
		fmt.Fprintf(l.out, "\nwarning: gates not logged from step %d on: %v\n", s.Step, err)
		l.gates = nil
		return nil
	}
	out := make([][]float32, len(g))
	for i, row := range g {
		out[i] = make([]float32, len(row))
		for h, v := range row {
			out[i][h] = float32(v)
		}
	}
	return out
}

func (l *trainLog) onEpoch(e train.EpochInfo) error {
	if l.err != nil {
		return l.err
	}
	l.res.finalLoss = results.Float(e.TrainLoss)
	return l.appendLine(results.Metric{Kind: results.KindEpoch, Step: results.Int(e.Step), Epoch: results.Float(float64(e.Epoch + 1)),
		Loss: results.Float(e.TrainLoss), TrainSeconds: results.Float(l.baseSeconds + time.Since(l.start).Seconds()),
		TrainTokens: results.Int(l.res.tokens)})
}

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
