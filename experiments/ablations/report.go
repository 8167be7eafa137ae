package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/results"
)

// measuredRun is a complete run of a sweep: its plan, summary and metrics.
type measuredRun struct {
	plannedRun
	Summary *results.Summary
	Metrics []results.Metric
	Dir     string
	// Metric is the protocol the tables read (Preset.Metric): "" for the run's primary protocol.
	Metric string
	// Outcomes are the run's per-problem correctness (read by writeReport, for the statistics).
	Outcomes *pipeline.Outcomes
}

// protocol is the protocol the run's accuracies are read in: the report's metric, else the run's primary one.
func (m measuredRun) protocol() string {
	if m.Metric != "" {
		return m.Metric
	}
	return m.Summary.Primary
}

// readsOther reports whether the tables read a protocol other than letter scoring (the paper's); the report then
// records letter scoring's figures beside it.
func (m measuredRun) readsOther() bool { return m.protocol() != "letter" }

// accuracy returns the run's accuracy of a category in percent by the report's protocol (nil: n/a).
func (m measuredRun) accuracy(category string) *float64 {
	if v, ok := m.Summary.Scores[m.protocol()].Percent(category); ok {
		return results.Float(v)
	}
	return nil
}

// letterAccuracy is the run's letter-scoring accuracy, whatever the metric (nil: letter scoring did not run).
func (m measuredRun) letterAccuracy() *float64 {
	if v, ok := m.Summary.Scores["letter"].Percent("Avg"); ok {
		return results.Float(v)
	}
	return nil
}

// zeroShot returns the run's zero-shot baseline (the pretrained model on the same problems) by the report's
// protocol and by letter scoring, in percent (nil: not measured).
func (m measuredRun) zeroShot() (metric, letter *float64) {
	get := func(protocol string) *float64 {
		if v, ok := m.Summary.BaselinePercent(results.ZeroShot, protocol, "Avg"); ok {
			return results.Float(v)
		}
		return nil
	}
	return get(m.protocol()), get("letter")
}

// group is the runs of one sweep value, one per seed (in seed order).
type group struct {
	Value string
	Runs  []measuredRun
}

// collect reads the run folders of a sweep's runs. Every run must be complete; otherwise the error names each
// missing or incomplete run with its settings and folder.
func collect(runs []plannedRun, metric string) ([]group, error) {
	var groups []group
	index := map[string]int{}
	var missing []string
	for _, r := range runs {
		dir := r.dir()
		s, complete, err := pipeline.RunComplete(dir) // complete.json, not summary.json's flag
		switch {
		case err != nil:
			return nil, err
		case s == nil:
			state := "not started"
			if _, err := os.Stat(dir); err == nil {
				state = "incomplete (no summary.json)"
			}
			missing = append(missing, fmt.Sprintf("%s: %s (%s)", r.describe(), dir, state))
			continue
		case !complete:
			missing = append(missing, fmt.Sprintf("%s: %s (incomplete)", r.describe(), dir))
			continue
		}
		ms, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile))
		if err != nil {
			return nil, err
		}
		i, ok := index[r.Value]
		if !ok {
			i = len(groups)
			index[r.Value] = i
			groups = append(groups, group{Value: r.Value})
		}
		if metric != "" && s.Scores[metric] == nil {
			return nil, fmt.Errorf("%s: %s has no %s scores (the report reads -metric %s; evaluate with an -eval list that includes it)", r.describe(), dir, metric, metric)
		}
		groups[i].Runs = append(groups[i].Runs, measuredRun{plannedRun: r, Summary: s, Metrics: ms, Dir: dir, Metric: metric})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%d of %d runs are missing or incomplete (run the sweep without -report to complete them):\n  %s",
			len(missing), len(runs), strings.Join(missing, "\n  "))
	}
	return groups, nil
}

// measure returns the mean and spread of f over the group's runs.
func (g group) measure(f func(measuredRun) *float64) results.MeanStd {
	vals := make([]*float64, len(g.Runs))
	for i, r := range g.Runs {
		vals[i] = f(r)
	}
	return results.MeanStdOf(vals)
}

var (
	valAcc    = func(m measuredRun) *float64 { return m.accuracy("Avg") }
	imgAcc    = func(m measuredRun) *float64 { return m.accuracy("IMG") }
	trainLoss = func(m measuredRun) *float64 { return m.Summary.FinalTrainLoss }
	valLoss   = func(m measuredRun) *float64 { return m.Summary.FinalValLoss }
)

// params returns the group's trainable parameter count (the same for every seed; an error otherwise).
func (g group) params() (int64, error) {
	p := g.Runs[0].Summary.TrainableParams
	for _, r := range g.Runs[1:] {
		if r.Summary.TrainableParams != p {
			return 0, fmt.Errorf("%s: %d trainable parameters, but %d in %s", r.Dir, r.Summary.TrainableParams, p, g.Runs[0].Dir)
		}
	}
	return p, nil
}

// label is a value's row label: the value, with "random-weight CLIP" for multimodal runs whose CLIP encoder had
// random weights.
func (g group) label() string {
	c := g.Runs[0].Config
	if c.Vision.Modality == pipeline.Multimodal && c.Vision.CLIP == "random" {
		return g.Value + " (random-weight CLIP)"
	}
	return g.Value
}

// seedNote describes the averaging.
func seedNote(groups []group) string {
	n := 0
	var seeds []string
	for _, g := range groups {
		n = max(n, len(g.Runs))
	}
	for _, r := range groups[0].Runs {
		seeds = append(seeds, strconv.FormatUint(r.Config.Seed, 10))
	}
	if n == 1 {
		return fmt.Sprintf("Measured: one seed (%s); run with -seeds 3 for a spread.", strings.Join(seeds, ", "))
	}
	return fmt.Sprintf("Measured: mean over %d seeds (%s: adapter init and data order); ± is the sample standard deviation over seeds.", n, strings.Join(seeds, ", "))
}

// describeConfig summarizes the settings the measured runs share; skip is the swept flag, left out.
func describeConfig(c pipeline.Config, skip string) string {
	var parts []string
	for _, p := range params {
		if p.Describe != nil && p.Flag != skip {
			parts = append(parts, p.Describe(c))
		}
	}
	parts = append(parts, fmt.Sprintf("batch %d×%d, lr %g, max %d tokens, %s scoring", c.Train.BatchSize, c.Train.AccumSteps, c.Train.BaseLR, c.Train.MaxLen, c.Eval.Mode))
	return fmt.Sprintf("Measured runs: %s; %s.", strings.Join(parts, ", "), evalDescription(c))
}

// evalDescription says what the runs trained and were evaluated on.
func evalDescription(c pipeline.Config) string {
	d := fmt.Sprintf("trained on split %s, evaluated on split %s", c.Data.TrainSplit, c.Data.EvalSplit)
	if c.Data.TrainSplit == "" {
		d = fmt.Sprintf("trained on folds ≠%d and evaluated on fold %d of the %d-fold split of %s", c.Data.EvalFold, c.Data.EvalFold, c.Data.Folds, filepath.Base(orString(c.Data.ProblemsFile, c.Data.Dir)))
	}
	limit := func(n int, what string) string {
		if n > 0 {
			return fmt.Sprintf("at most %d %s problems", n, what)
		}
		return "all " + what + " problems"
	}
	if c.Data.TrainLimit > 0 || c.Data.EvalLimit > 0 {
		d += " (" + limit(c.Data.TrainLimit, "training") + ", " + limit(c.Data.EvalLimit, "evaluation") + ")"
	}
	return d
}

// measuredOn is the short name of the evaluation set for table titles.
func measuredOn(c pipeline.Config) string {
	if c.Data.TrainSplit != "" {
		return "ScienceQA " + c.Data.EvalSplit
	}
	return fmt.Sprintf("fold %d/%d of %s", c.Data.EvalFold, c.Data.Folds, filepath.Base(orString(c.Data.ProblemsFile, c.Data.Dir)))
}

func orString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// buildTable renders a sweep's measured groups as its table: the parameter's own (Tables 4, 5 and 6 of the paper
// for L, init and epochs) or the generic one in the same style.
func buildTable(s *Sweep, groups []group) (*results.Table, error) {
	acc := make([]results.MeanStd, len(groups))
	for i, g := range groups {
		acc[i] = g.measure(valAcc)
	}
	p := s.param()
	var t *results.Table
	var err error
	if p.Table != nil {
		t, err = p.Table(s, groups, acc)
	} else {
		t, err = genericTable(s, p, groups)
	}
	if err != nil {
		return nil, err
	}
	c := groups[0].Runs[0].Config
	// Tables 4-6 are titled "(ScienceQA val)", the paper's split; say what the measured rows used.
	if on := measuredOn(c); on != "ScienceQA val" {
		t.Title = strings.Replace(t.Title, "(ScienceQA val)", "(measured: "+on+"; paper: ScienceQA val)", 1)
	}
	t.Notes = append(t.Notes, seedNote(groups), describeConfig(c, s.flagName()))
	if s.Note != "" {
		t.Notes = append(t.Notes, s.Note)
	}
	return t, nil
}

// table4 is the paper's Table 4 (adapted layers) with the spread over seeds.
func table4(s *Sweep, groups []group, acc []results.MeanStd) (*results.Table, error) {
	rows := make([]results.LayersResult, len(groups))
	for i, g := range groups {
		l, err := strconv.Atoi(g.Value)
		if err != nil {
			return nil, fmt.Errorf("sweep %s: L=%q: %w", s.Name, g.Value, err)
		}
		p, err := g.params()
		if err != nil {
			return nil, err
		}
		rows[i] = results.LayersResult{Layers: l, Params: p, ValAcc: acc[i], TrainLoss: g.measure(trainLoss),
			ValLoss: g.measure(valLoss), PaperLayers: paperValue(s, g.Value, float64(l))}
	}
	t := results.Table4(rows)
	t.Notes = append(t.Notes, "Params: trainable adapter parameters of the measured model (adapter.Count: L·K·C prompts + L·H gates, + the visual projection in multimodal runs).")
	return t, nil
}

// findGroup returns the group of a sweep value (nil: not swept).
func findGroup(groups []group, value string) *group {
	for i := range groups {
		if groups[i].Value == value {
			return &groups[i]
		}
	}
	return nil
}

// pairedGain is the mean ± std over seeds of f(a's run) − f(b's run), pairing the runs of equal seed.
func pairedGain(a, b *group, f func(measuredRun) *float64) results.MeanStd {
	var gains []*float64
	for i := range min(len(a.Runs), len(b.Runs)) {
		x, y := f(a.Runs[i]), f(b.Runs[i])
		if x != nil && y != nil {
			gains = append(gains, results.Float(*x-*y))
		}
	}
	return results.MeanStdOf(gains)
}

// table5 is the paper's Table 5 (zero- vs random-init gating) with the spread over seeds.
func table5(s *Sweep, groups []group, acc []results.MeanStd) (*results.Table, error) {
	zero, rand := findGroup(groups, "zero"), findGroup(groups, "random")
	if zero == nil || rand == nil {
		return nil, fmt.Errorf("sweep %s: Table 5 needs init values zero and random, have %v", s.Name, s.Values)
	}
	zs, rs := zero.measure(valAcc), rand.measure(valAcc)
	// The gain's spread pairs the runs of equal seed.
	gain := pairedGain(zero, rand, valAcc)
	return results.Table5(results.InitResult{RandInit: rs, ZeroInit: zs, GainStd: gain.Std}), nil
}

// table6 is the paper's Table 6 (epochs) with the spread over seeds.
func table6(s *Sweep, groups []group, acc []results.MeanStd) (*results.Table, error) {
	rows := make([]results.EpochsResult, len(groups))
	for i, g := range groups {
		e, err := strconv.ParseFloat(g.Value, 64)
		if err != nil {
			return nil, fmt.Errorf("sweep %s: epochs=%q: %w", s.Name, g.Value, err)
		}
		rows[i] = results.EpochsResult{Epochs: e, TrainLoss: g.measure(trainLoss), ValLoss: g.measure(valLoss), ValAcc: acc[i],
			PaperEpochs: paperValue(s, g.Value, e)}
	}
	return results.Table6(rows), nil
}

// workRelative names a run folder relative to the working directory when it lies inside it (runs.json is
// committed: results/runs/<id> is right in every checkout), else as it is.
func workRelative(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(rel)
	}
	return p
}

// paperValue returns the paper's value a sweep value is compared with (Table4/Table6's PaperLayers/PaperEpochs):
// the sweep's mapping, else the value itself when the sweep has no mapping (and it is whole), else -1 (no paper
// row).
func paperValue(s *Sweep, value string, v float64) int {
	if s.Paper == nil {
		if v != math.Trunc(v) {
			return -1
		}
		return int(v)
	}
	if p, ok := s.Paper[value]; ok {
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
	}
	return -1
}

// paperRow finds a reference row of the paper's Table 1 by name.
func paperRow(name string) map[string]float64 {
	for _, r := range results.PaperScienceQARows() {
		if r.Name == name {
			return r.Accuracy
		}
	}
	return nil
}

// genericTable is the table of a setting without a paper table of its own, in the style of Tables 4-6: the value,
// the trainable parameters, final train and val loss and val accuracy (mean and ± over seeds), then the
// parameter's own columns (p.Generic).
func genericTable(s *Sweep, p *param, groups []group) (*results.Table, error) {
	st := p.Generic
	t := &results.Table{Label: "-" + p.Flag, Title: fmt.Sprintf("Sweep %s: -%s", s.Name, p.Flag)}
	if st.Title != "" {
		t.Title = st.Title
	}
	if st.Label != "" {
		t.Label = st.Label
	}
	t.Columns = append([]results.Column{
		{Name: "Params", Format: "%.0f"},
		{Name: "Train Loss", Format: "%.3f"}, results.SpreadColumn("Train Loss", "%.3f"),
		{Name: "Val Loss", Format: "%.3f"}, results.SpreadColumn("Val Loss", "%.3f"),
		{Name: "Val Acc (%)", Format: "%.2f"}, results.SpreadColumn("Val Acc (%)", "%.2f"),
	}, st.Columns...)
	for _, g := range groups {
		n, err := g.params()
		if err != nil {
			return nil, err
		}
		tl, vl, acc := g.measure(trainLoss), g.measure(valLoss), g.measure(valAcc)
		row := results.Row{Label: g.label(), Source: results.SourceMeasured,
			Values: []*float64{results.Float(float64(n)), tl.Mean, tl.Std, vl.Mean, vl.Std, acc.Mean, acc.Std}}
		if st.Values != nil {
			row.Values = append(row.Values, st.Values(g)...)
		}
		t.Rows = append(t.Rows, row)
	}
	if st.Finish != nil {
		st.Finish(t, groups)
	}
	return t, nil
}

// writeReport builds a sweep's table and figures into dir and prints the table to out.
func writeReport(s *Sweep, groups []group, dir, fig5Mode string, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	t, err := buildTable(s, groups)
	if err != nil {
		return err
	}
	if err := loadOutcomes(groups); err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	t.Notes = append(t.Notes, metricNotes(groups)...)
	stats, err := computeStats(s, groups)
	if err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	t.Notes = append(t.Notes, "Paired differences (stats.md: 95 % bootstrap intervals, exact tests, accuracy intervals):")
	t.Notes = append(t.Notes, stats.verdicts()...)
	if err := t.Render(out, results.Text); err != nil {
		return err
	}
	if err := t.Save(filepath.Join(dir, "table")); err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	if err := writeStats(s, stats, dir, out); err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	var written []string
	written = append(written, filepath.Join(dir, "table.{txt,md,json}"), filepath.Join(dir, "stats.{txt,md,json}"), filepath.Join(dir, "comparisons.json"))

	// Loss curves of every value (for the init sweep: the paper's Figure 5).
	p := s.param()
	name, title := "loss_curves", fmt.Sprintf("Training loss by -%s (sweep %s)", p.Flag, s.Name)
	if p.Figure != "" {
		name, title = p.Figure, p.FigureTitle
	}
	curves := make([]runCurves, len(groups))
	for i, g := range groups {
		curves[i] = runCurves{Label: curveLabel(s, g)}
		for _, r := range g.Runs {
			curves[i].Runs = append(curves[i].Runs, r.Metrics)
		}
	}
	fig, mode, err := lossFigure(title, curves, fig5Mode)
	if err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	if err := fig.Save(filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	written = append(written, fmt.Sprintf("%s.{png,svg} (x: %s)", filepath.Join(dir, name), mode))

	gf, err := gatesFigure(s, groups, dir)
	if err != nil {
		return err
	}
	written = append(written, gf)

	if p.LayersFigure {
		if err := writeLayersFigure(s, groups, filepath.Join(dir, "layers")); err != nil {
			return fmt.Errorf("report %s: %w", s.Name, err)
		}
		written = append(written, filepath.Join(dir, "layers.{png,svg}"))
	}

	if err := writeRunsJSON(filepath.Join(dir, "runs.json"), groups); err != nil {
		return fmt.Errorf("report %s: %w", s.Name, err)
	}
	written = append(written, filepath.Join(dir, "runs.json"))
	fmt.Fprintf(out, "wrote %s\n\n", strings.Join(written, ", "))
	return nil
}

// writeStats prints the sweep's statistics table and saves it (stats.{txt,md,json}) with every count
// (comparisons.json).
func writeStats(s *Sweep, stats *sweepStats, dir string, out io.Writer) error {
	st := stats.table(s)
	if err := st.Render(out, results.Text); err != nil {
		return err
	}
	if err := st.Save(filepath.Join(dir, "stats")); err != nil {
		return err
	}
	return results.WriteJSONAtomic(filepath.Join(dir, "comparisons.json"), stats)
}

// writeLayersFigure draws accuracy and losses against the number of adapted layers (path.{png,svg}).
func writeLayersFigure(s *Sweep, groups []group, path string) error {
	rows := make([]results.LayersResult, len(groups))
	for i, g := range groups {
		l, _ := strconv.Atoi(g.Value)
		rows[i] = results.LayersResult{Layers: l, ValAcc: g.measure(valAcc), TrainLoss: g.measure(trainLoss),
			ValLoss: g.measure(valLoss), PaperLayers: paperValue(s, g.Value, float64(l))}
	}
	lf, err := results.LayersFigure(rows)
	if err != nil {
		return err
	}
	usePreciseTicks(lf)
	var ls []int
	for _, r := range rows {
		ls = append(ls, r.Layers)
	}
	integerTicks(lf, ls)
	return lf.Save(path)
}

// runRecord is one run of a report's runs.json: which run folder gave each seed's numbers.
type runRecord struct {
	Value     string   `json:"value"`
	Seed      uint64   `json:"seed"`
	RunID     string   `json:"run_id"`
	Dir       string   `json:"dir"`
	Params    int64    `json:"trainable_params"`
	TrainLoss *float64 `json:"final_train_loss"`
	ValLoss   *float64 `json:"final_val_loss"`
	ValAcc    *float64 `json:"val_acc"`
	IMGAcc    *float64 `json:"img_acc,omitempty"`
	// Metric names the protocol val_acc and img_acc are read in when it is not letter scoring; LetterAcc is letter
	// scoring's accuracy beside it.
	Metric         string   `json:"metric,omitempty"`
	LetterAcc      *float64 `json:"letter_acc,omitempty"`
	ZeroShotAcc    *float64 `json:"zero_shot_acc,omitempty"`
	ZeroShotLetter *float64 `json:"zero_shot_letter_acc,omitempty"`
	// Problems are the evaluated pids in order; Correct[protocol][i] is '1' when the run answered Problems[i]
	// right and '0' otherwise (every protocol the run scored), ZeroShotCorrect the same for the pretrained
	// model: enough to recompute every accuracy, interval and paired test of the report.
	Problems        []string          `json:"problems"`
	Correct         map[string]string `json:"correct"`
	ZeroShotCorrect map[string]string `json:"zero_shot_correct,omitempty"`
}

// writeRunsJSON writes the groups' runs as runRecords.
func writeRunsJSON(path string, groups []group) error {
	var recs []runRecord
	for _, g := range groups {
		for _, r := range g.Runs {
			rec := runRecord{Value: g.Value, Seed: r.Config.Seed, RunID: r.Summary.RunID, Dir: workRelative(r.Dir),
				Params: r.Summary.TrainableParams, TrainLoss: trainLoss(r), ValLoss: valLoss(r), ValAcc: valAcc(r), IMGAcc: imgAcc(r)}
			if r.readsOther() {
				rec.Metric, rec.LetterAcc = r.protocol(), r.letterAccuracy()
				rec.ZeroShotAcc, rec.ZeroShotLetter = r.zeroShot()
			}
			rec.Problems = sortedPIDs(r.Outcomes.Correct[r.Outcomes.Primary])
			rec.Correct = map[string]string{}
			for proto, c := range r.Outcomes.Correct {
				rec.Correct[proto] = correctString(rec.Problems, c)
			}
			if r.Outcomes.ZeroShot != nil {
				rec.ZeroShotCorrect = map[string]string{}
				for proto, c := range r.Outcomes.ZeroShot {
					rec.ZeroShotCorrect[proto] = correctString(rec.Problems, c)
				}
			}
			recs = append(recs, rec)
		}
	}
	return results.WriteJSONAtomic(path, recs)
}

// curveLabel names a value's curve: the parameter's wording, else "-flag=<row label>".
func curveLabel(s *Sweep, g group) string {
	if p := s.param(); p.Curve != nil {
		if l := p.Curve(g.Value); l != "" {
			return l
		}
	}
	return "-" + s.flagName() + "=" + g.label()
}

// metricNotes says which scoring the table's accuracies are and gives the row every value is read against: the
// pretrained model's zero-shot accuracy on the same problems, and the other scoring's mean per value.
func metricNotes(groups []group) []string {
	if len(groups) == 0 || len(groups[0].Runs) == 0 {
		return nil
	}
	r0 := groups[0].Runs[0]
	if !r0.readsOther() {
		return nil
	}
	what := "protocol not registered in this build"
	if p, ok := evaluate.Lookup(r0.protocol()); ok {
		what = p.Description()
	}
	notes := []string{fmt.Sprintf("Accuracies are %s scoring (%s; letter scoring stays at chance on this model).", r0.protocol(), what)}
	zeroShot := func(r measuredRun) string {
		zm, zl := r.zeroShot()
		if zm == nil {
			return ""
		}
		line := fmt.Sprintf("%s %.2f", r.protocol(), *zm)
		if zl != nil {
			line += fmt.Sprintf(", letter %.2f", *zl)
		}
		return line
	}
	if perValueZeroShot(groups) {
		// Each value's runs were read against the pretrained model asked as they were (summary.json's baseline).
		var parts []string
		for _, g := range groups {
			if z := zeroShot(g.Runs[0]); z != "" {
				parts = append(parts, g.label()+": "+z)
			}
		}
		notes = append(notes, "Zero-shot of each value (the pretrained model, no adapter, same problems, asked as that value's runs): "+strings.Join(parts, "; ")+".")
	} else if z := zeroShot(r0); z != "" {
		notes = append(notes, "Zero-shot (the pretrained model, no adapter, same problems): "+z+".")
	}
	var parts []string
	for _, g := range groups {
		st := g.measure(func(m measuredRun) *float64 { return m.letterAccuracy() })
		if st.Mean != nil {
			parts = append(parts, fmt.Sprintf("%s %.2f", g.label(), *st.Mean))
		}
	}
	if len(parts) > 0 {
		notes = append(notes, "Letter scoring, mean over seeds: "+strings.Join(parts, ", ")+".")
	}
	return notes
}
