package pipeline

import (
	"context"
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
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/compute/shapes"
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

// Result is what a finished run reports.
type Result struct {
	Dir     string
	Summary *results.Summary
	Skipped bool // the folder was already complete
}

// Run performs the run cfg describes in its folder <RunsDir>/<ID>, resuming a partial one. A complete one is not
// run again (unless cfg.Force): its recorded table is printed. Progress and tables go to out.
//
// Run = lock → prepare → train → evaluate → record: each stage takes the previous stage's value. A signal (ctx)
// stops the run between stages and inside training; what stays in the folder resumes on the next run.
func Run(ctx context.Context, cfg Config, out io.Writer) (res *Result, err error) {
	return run(ctx, cfg, true, out)
}

// run is Run; lossFromCloze lets the validation loss read the cloze pass where it holds a problem's training
// sequence (what Run does). Without it the loss graph measures every problem in a pass of its own: the reference
// that a test compares the shortcut with.
func run(ctx context.Context, cfg Config, lossFromCloze bool, out io.Writer) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l, err := lock(ctx, cfg, out)
	if err != nil {
		return nil, err
	}
	defer l.rf.close(&err)
	if l.done != nil {
		return &Result{Dir: l.dir, Summary: l.done, Skipped: true}, printRecorded(out, l.dir, l.done, !cfg.SkipTable)
	}
	p, err := prepare(ctx, l, out)
	if err != nil {
		return nil, err
	}
	defer p.s.close()
	t, err := trainStage(ctx, p, out)
	if err != nil {
		return nil, err
	}
	e, err := evaluateStage(ctx, t, lossFromCloze, out)
	if err != nil {
		return nil, err
	}
	return record(ctx, e, out)
}

// locked is the lock stage's value: the run's folder, held by this process, whose record matches this run.
type locked struct {
	cfg      Config // with its RunID
	dir      string
	rf       *runFolder
	done     *results.Summary // the recorded summary when the folder is complete (nothing to run)
	resolved folderRecord     // what this run records in config.json
	forced   []string         // the differences -force-resume accepted
}

// lock opens and locks the run folder, clears it for -force, and checks its record against the current inputs
// before anything in it is written. On an error the folder is released (and removed if this call created it).
func lock(ctx context.Context, cfg Config, out io.Writer) (_ *locked, err error) {
	if cfg.RunID, err = cfg.ID(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.RunsDir, cfg.RunID)
	rf, err := openRunFolder(ctx, cfg, dir, out)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rf.close(&err)
		}
	}()
	l := &locked{cfg: cfg, dir: dir, rf: rf}
	done, complete, err := l.rf.complete()
	if err != nil {
		return nil, err
	}
	if complete && cfg.Force {
		fmt.Fprintf(out, "-force: deleting the complete run %s to run it again\n", l.dir)
		if err := l.rf.clearForRerun(); err != nil {
			return nil, err
		}
		complete = false
	}
	modelPath, tokPath, err := resolveModel(cfg, out)
	if err != nil {
		return nil, err
	}
	if l.resolved, err = currentRecord(cfg, modelPath, tokPath, ""); err != nil {
		return nil, err
	}
	if l.forced, err = l.rf.checkRecord(cfg, l.resolved, out); err != nil {
		return nil, err
	}
	if complete {
		l.done = done
	}
	return l, nil
}

// prepared is the prepare stage's value: the open session (backend, tokenizer, problems, frozen model), the
// adapter, the tokenized examples and the summary's description of the run.
type prepared struct {
	*locked
	s       *session
	a       *adapter.Adapter
	ex      *runExamples
	summary *results.Summary
}

// prepare opens the session, checks the settings against the model, writes config.json and builds the adapter and
// the examples (with image features for a multimodal run).
func prepare(ctx context.Context, l *locked, out io.Writer) (_ *prepared, err error) {
	cfg := l.cfg
	fmt.Fprintf(out, "run %s in %s\n", cfg.RunID, l.dir)
	p := &prepared{locked: l}
	if p.s, err = open(cfg, out); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.s.close()
		}
	}()
	mc := p.s.model.Config
	if cfg.Adapter.Layers > mc.NumLayers {
		return nil, fmt.Errorf("-L %d (adapter.layers): model %s has %d layers", cfg.Adapter.Layers, p.s.modelPath, mc.NumLayers)
	}
	l.resolved.Backend = p.s.info.Config
	if err := l.rf.writeRecord(l.resolved, l.forced); err != nil {
		return nil, err
	}
	var feats map[string][]float32
	var visual *adapter.VisualConfig
	if cfg.Vision.Modality == Multimodal {
		if feats, visual, err = p.s.features(out); err != nil {
			return nil, err
		}
	}
	acfg, err := cfg.adapterConfig(mc.NumLayers, visual)
	if err != nil {
		return nil, err
	}
	if p.a, err = adapter.New(p.s.model.Store, acfg, mc); err != nil {
		return nil, err
	}
	counts := adapter.Count(acfg, mc)
	fmt.Fprintln(out, counts.Summary())
	if p.ex, err = p.s.examples(feats, out); err != nil {
		return nil, err
	}
	p.summary = &results.Summary{RunID: cfg.RunID, Versions: results.CurrentVersions(), Backend: p.s.info.String(),
		Device: fmt.Sprintf("%s, %d CPU cores", p.s.backend.Description(), runtime.NumCPU()), TrainableParams: int64(counts.Total()),
		Environment: environment(p.s.info), Dir: l.dir, Split: evalSplitName(cfg), SkippedImages: p.s.data.skippedImages, Vision: p.s.data.vision,
		Truncation: &p.ex.trunc}
	if err := p.summary.SetConfig(cfg); err != nil {
		return nil, err
	}
	return p, ctx.Err()
}

// trainedRun is the train stage's value: the trainer (its state is the trained adapter, saved in the folder).
type trainedRun struct {
	*prepared
	tr *train.Trainer
}

// trainStage trains from scratch or from the folder's checkpoint and saves the adapter.
func trainStage(ctx context.Context, p *prepared, out io.Writer) (*trainedRun, error) {
	cfg, s := p.cfg, p.s
	place, err := device.NewPlacement(s.backend, cfg.Devices, false) // -devices: the batch sharded over a mesh
	if err != nil {
		return nil, err
	}
	tr, err := train.NewPlaced(s.model, p.a, s.backend, cfg.trainConfig(), place)
	if err != nil {
		return nil, err
	}
	phase, before := results.StartPhase("train"), tr.Stats()
	res, err := trainRun(ctx, cfg, p.dir, tr, p.ex.train, out)
	if errors.Is(err, train.ErrNonFinite) {
		return nil, fmt.Errorf("run %s: %w\n(in the run folder: %s)", p.dir, err, p.rf.keptMessage())
	} else if err != nil {
		return nil, err
	}
	sum := p.summary
	sum.Profile = append(sum.Profile, profiled(out, phase, tr.Stats().Sub(before)))
	tr.ReleaseTrainingGraphs() // evaluation does not need them: their executables' memory goes back
	device.ReleaseHostMemory()
	sum.Timings.TrainSeconds = res.seconds
	if res.seconds > 0 {
		sum.Timings.TokensPerSecond = float64(res.tokens) / res.seconds
	}
	sum.FinalTrainLoss = res.finalLoss
	if err := p.a.Save(filepath.Join(p.dir, AdapterFile), map[string]string{"run_id": cfg.RunID}); err != nil {
		return nil, err
	}
	if sum.FinalGates, err = saveGatesFigure(p.dir, cfg.RunID); err != nil {
		return nil, err
	}
	return &trainedRun{prepared: p, tr: tr}, ctx.Err()
}

// evaluated is the evaluate stage's value: the answers of every protocol.
type evaluated struct {
	*trainedRun
	ev *evaluation
}

// evaluateStage answers the evaluation problems by the configured protocols, measures the validation loss and,
// with -zero-shot, the pretrained model's scores. A signal stops it between phases; the rerun resumes here (the
// checkpoint stays until the run is complete).
//
// The validation loss is read from the cloze pass where a problem's cloze row holds its training sequence (a
// cloze-target run: the cloze prompt, the answer's tokens and EOS, the loss on the tokens after the prompt), so
// those problems are not run twice; the rest (all of them for other targets) go through the trainer's loss graph.
// Without lossFromCloze every problem goes through the loss graph.
func evaluateStage(ctx context.Context, t *trainedRun, lossFromCloze bool, out io.Writer) (_ *evaluated, err error) {
	cfg, s, ex, sum := t.cfg, t.s, t.ex, t.summary
	start := time.Now()
	fmt.Fprintf(out, "validation loss on %d evaluation problems (from the cloze pass where it reads their training sequences)…\n", len(ex.evalTrain))
	protocols, err := cfg.Eval.Mode.Protocols()
	if err != nil {
		return nil, err
	}
	env, err := evalEnv(cfg, s, t.a, s.data.eval, ex.features)
	if err != nil {
		return nil, err
	}
	if lossFromCloze {
		env.LossExamples = ex.evalTrain
	}
	// With zero gates the trained adapter is exactly the base model: the zero-shot baseline, when it is measured,
	// reuses this evaluation's executables instead of compiling the base model's.
	var reuse *evaluate.Runner
	if cfg.Eval.ZeroShot && zeroGatesExact(t.a) {
		reuse = env.Runner
	}
	released := false
	release := func() {
		if !released {
			releaseRunner(env.Runner)
			released = true
		}
	}
	defer release()
	e := &evaluated{trainedRun: t}
	if e.ev, err = runProtocols(ctx, cfg, env, protocols, out); err != nil {
		return nil, err
	}
	if reuse == nil {
		release()
	}
	sum.Profile = append(sum.Profile, e.ev.profile("")...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sum.FinalValLoss, err = validationLoss(t, e.ev.loss, out); err != nil {
		return nil, err
	}
	sum.Timings.EvalSeconds = time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Eval.ZeroShot {
		if err := addZeroShot(ctx, cfg, s, t.resolved, ex, sum, reuse, out); err != nil {
			return nil, err
		}
	}
	return e, ctx.Err()
}

// validationLoss is the mean masked loss over the evaluation problems' training sequences: what the cloze pass
// measured of them (measured) plus the trainer's loss graph over the others, weighted by target tokens. Its phase
// ("validation loss") counts the loss graph's work only.
func validationLoss(t *trainedRun, measured evaluate.ClozeLoss, out io.Writer) (*float64, error) {
	phase, before := results.StartPhase("validation loss"), t.tr.Stats()
	var rest []train.Example
	for _, e := range t.ex.evalTrain {
		if !measured.Measured[e.ID] {
			rest = append(rest, e)
		}
	}
	nll, targets := measured.NLL, float64(measured.Targets)
	if len(rest) > 0 {
		t.tr.Counter.OnCompile = func(name string, ss []shapes.Shape) {
			fmt.Fprintf(out, "compiling the %s graph (shape %s)…\n", name, train.DescribeShapes(ss))
		}
		mean, err := t.tr.EvalLoss(rest)
		t.tr.Counter.OnCompile = nil
		if err != nil {
			return nil, err
		}
		n := 0
		for _, e := range rest {
			for _, m := range e.LossMask[1:] { // the weights EvalLoss averages over: targets after position 0
				if m {
					n++
				}
			}
		}
		nll, targets = nll+mean*float64(n), targets+float64(n)
	}
	t.summary.Profile = append(t.summary.Profile, profiled(out, phase, t.tr.Stats().Sub(before)))
	fmt.Fprintf(out, "validation loss: %d problems read from the cloze pass, %d by the loss graph\n", len(measured.Measured), len(rest))
	if targets == 0 {
		return nil, nil
	}
	return results.Float(nll / targets), nil
}

// record writes the run's results (predictions, summary, table, loss figure) and then complete.json, the one
// record that the run completed; the checkpoint goes last.
func record(ctx context.Context, e *evaluated, out io.Writer) (*Result, error) {
	dir, sum := e.dir, e.summary
	if ms, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile)); err == nil {
		if sum.FinalTrainLoss == nil {
			// Resumed after its last epoch: no epoch ended in this process, the log has the last one.
			if losses := results.EpochLosses(ms); len(losses) > 0 {
				sum.FinalTrainLoss = results.Float(losses[len(losses)-1])
			}
		}
		if fig, err := results.LossCurve(sum.RunID, ms); err == nil {
			if err := fig.Save(filepath.Join(dir, LossFigure)); err != nil {
				return nil, err
			}
		}
	}
	if err := writeResults(dir, sum, e.ev, e.s.data, out); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := e.rf.markComplete(); err != nil {
		return nil, err
	}
	// The checkpoint is only needed to resume; the adapter and summary are the run's record.
	if err := os.Remove(filepath.Join(dir, CheckpointFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	return &Result{Dir: dir, Summary: sum}, nil
}

// writeResults writes what a run and a re-evaluation both record: the predictions of every protocol, the summary
// (scored by category, dated) and the table, which it also prints.
func writeResults(dir string, sum *results.Summary, ev *evaluation, d *runData, out io.Writer) error {
	if err := recordEvaluation(dir, sum, ev, d); err != nil {
		return err
	}
	// No completeness flag: complete.json, written last by markComplete, is the record that the run completed.
	sum.Recorded = time.Now().UTC().Format(time.RFC3339)
	if err := results.WriteSummary(dir, sum); err != nil {
		return err
	}
	t := runTable(sum)
	if err := t.Render(out, results.Text); err != nil {
		return err
	}
	return t.Save(filepath.Join(dir, TableFile))
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
	when := "" // from the record (runs recorded before it held a date have none), never the files' mtime
	if t, err := time.Parse(time.RFC3339, s.Recorded); err == nil {
		when = " on " + t.Format("2006-01-02 15:04 MST")
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
	if err := runTable(s).Render(out, results.Text); err != nil {
		return err
	}
	fmt.Fprintln(out, "To run it afresh: -runs DIR (a fresh folder of runs) or -force (deletes this folder first).")
	return nil
}

// profiled ends a phase with the trainer's counts of what ran in it, and prints its line.
func profiled(out io.Writer, p *results.PhaseTimer, d train.Stats) results.PhaseProfile {
	prof := d.EndPhase(p)
	fmt.Fprintln(out, "profile:", prof)
	return prof
}
