package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/results"
)

// A sweep's statistics: every accuracy with its 95 % interval and every difference the tables state as a paired
// difference over the same problems and seeds (results.PairedDifference), with the verdict its interval gives.

// zeroShotValue is the comparisons' name for the pretrained model's row.
const zeroShotValue = "zero-shot"

// referenceValue is the preset's own value of a sweep's flag (the value every other is read against), set by plan.
func referenceValue(c pipeline.Config, flagName string) string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.Flags(fs)
	if f := fs.Lookup(flagName); f != nil {
		return f.DefValue
	}
	return ""
}

// loadOutcomes reads every run's per-problem correctness.
func loadOutcomes(groups []group) error {
	var r pipeline.OutcomeReader
	for gi := range groups {
		for ri := range groups[gi].Runs {
			m := &groups[gi].Runs[ri]
			o, err := r.Read(m.Dir)
			if err != nil {
				return err
			}
			m.Outcomes = o
		}
	}
	return nil
}

// correct is the run's per-problem correctness by the report's metric, on subset ("" all problems, "IMG").
func (m measuredRun) correct(subset string) map[string]bool {
	return restrict(m.Outcomes.Correct[m.protocol()], m.Outcomes.Image, subset)
}

// zeroShotCorrect is the zero-shot baseline's by the same metric (nil: not available).
func (m measuredRun) zeroShotCorrect(subset string) map[string]bool {
	if m.Outcomes.ZeroShot == nil {
		return nil
	}
	return restrict(m.Outcomes.ZeroShot[m.protocol()], m.Outcomes.Image, subset)
}

func restrict(c, image map[string]bool, subset string) map[string]bool {
	if subset == "" || c == nil {
		return c
	}
	out := map[string]bool{}
	for pid, ok := range c {
		if image[pid] {
			out[pid] = ok
		}
	}
	return out
}

// accuracyStat is one accuracy row of the stats table.
type accuracyStat struct {
	Value  string           `json:"value"`
	Subset string           `json:"subset,omitempty"`
	Acc    results.Accuracy `json:"accuracy"`
}

// comparison is one paired difference A − B.
type comparison struct {
	A, B   string
	Subset string `json:"subset,omitempty"`
	// Expect is the claimed sign of A − B (the paper's direction; 0: no claim).
	Expect  int            `json:"expect"`
	Paired  results.Paired `json:"paired"`
	Verdict string         `json:"verdict"`
}

func (c comparison) name() string {
	n := c.A + " − " + c.B
	if c.Subset != "" {
		n += " (" + c.Subset + ")"
	}
	return n
}

// sweepStats are a sweep's accuracies and differences.
type sweepStats struct {
	Metric       string `json:"metric"`
	Reference    string `json:"reference_value"`
	ZeroShotFile string `json:"zero_shot_record,omitempty"`
	// ZeroShotSubset: the record was measured on a larger problem set and restricted to the runs' problems.
	ZeroShotSubset bool           `json:"zero_shot_restricted,omitempty"`
	Accuracies     []accuracyStat `json:"accuracies"`
	Comparisons    []comparison   `json:"comparisons"`
	Resamples      int            `json:"bootstrap_resamples"`
	Seed           uint64         `json:"bootstrap_seed"`
}

// paperAccuracy is the paper's val accuracy for a sweep value where the paper has a row (Tables 4 and 6).
func paperAccuracy(s *Sweep, value string) (float64, bool) {
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, false
	}
	pv := paperValue(s, value, v)
	switch s.flagName() {
	case "L":
		for _, p := range results.PaperTable4() {
			if p.Layers == pv {
				return p.ValAcc, true
			}
		}
	case "epochs":
		for _, p := range results.PaperTable6() {
			if p.Epochs == pv {
				return p.ValAcc, true
			}
		}
	}
	return 0, false
}

// orient orders a pair of values so that the paper's claim, if any, is A > B, and returns the claimed sign:
// zero-init over random-init and multimodal over text (+1, the paper's Tables 5 and 1); numeric values larger
// first, claimed in the direction of the paper's rows for both (Tables 4 and 6) or unclaimed (0).
func orient(s *Sweep, x, y string) (a, b string, expect int) {
	switch s.flagName() {
	case "init":
		if y == "zero" {
			x, y = y, x
		}
		return x, y, 1
	case "modality":
		if y == "multimodal" {
			x, y = y, x
		}
		return x, y, 1
	}
	fx, ex := strconv.ParseFloat(x, 64)
	fy, ey := strconv.ParseFloat(y, 64)
	if ex != nil || ey != nil {
		return x, y, 0
	}
	if fy > fx {
		x, y = y, x
	}
	px, okx := paperAccuracy(s, x)
	py, oky := paperAccuracy(s, y)
	if okx && oky && px != py {
		if px > py {
			return x, y, 1
		}
		return x, y, -1
	}
	return x, y, 0
}

// pairsOf lists the value pairs a sweep's tables state: every value against the reference value, and for numeric
// values each against the next (L=20 vs L=10), once each.
func pairsOf(s *Sweep, values []string, reference string) [][2]string {
	var out [][2]string
	seen := map[[2]string]bool{}
	add := func(x, y string) {
		if x == y {
			return
		}
		k := [2]string{min(x, y), max(x, y)}
		if !seen[k] {
			seen[k] = true
			out = append(out, [2]string{x, y})
		}
	}
	hasRef := false
	for _, v := range values {
		hasRef = hasRef || v == reference
	}
	if !hasRef {
		reference = values[0]
	}
	for _, v := range values {
		add(v, reference)
	}
	nums := append([]string(nil), values...)
	numeric := true
	for _, v := range nums {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			numeric = false
		}
	}
	if numeric {
		sort.Slice(nums, func(i, j int) bool {
			a, _ := strconv.ParseFloat(nums[i], 64)
			b, _ := strconv.ParseFloat(nums[j], 64)
			return a < b
		})
		for i := 1; i < len(nums); i++ {
			add(nums[i], nums[i-1])
		}
	}
	return out
}

// strataOf pairs the runs of two groups seed by seed (B nil: the zero-shot baseline of A's runs).
func strataOf(a, b *group, subset string) ([]results.Stratum, error) {
	var strata []results.Stratum
	for _, ra := range a.Runs {
		var cb map[string]bool
		if b == nil {
			cb = ra.zeroShotCorrect(subset)
		} else {
			for _, rb := range b.Runs {
				if rb.Config.Seed == ra.Config.Seed {
					cb = rb.correct(subset)
				}
			}
		}
		if cb == nil {
			continue
		}
		st, err := results.NewStratum("seed "+strconv.FormatUint(ra.Config.Seed, 10), ra.correct(subset), cb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ra.Dir, err)
		}
		strata = append(strata, st)
	}
	return strata, nil
}

// computeStats computes a sweep's accuracies with intervals and its paired differences.
func computeStats(s *Sweep, groups []group) (*sweepStats, error) {
	bs := results.Bootstrap{}
	st := &sweepStats{Metric: groups[0].Runs[0].protocol(), Reference: s.reference,
		Resamples: results.DefaultResamples, Seed: results.DefaultBootstrapSeed}
	subsets := []string{""}
	if s.flagName() == "modality" {
		subsets = append(subsets, "IMG")
	}
	var values []string
	for gi := range groups {
		g := &groups[gi]
		values = append(values, g.Value)
		for _, sub := range subsets {
			var seeds []map[string]bool
			for _, r := range g.Runs {
				seeds = append(seeds, r.correct(sub))
			}
			acc, err := results.AccuracyOf(seeds, bs)
			if err != nil {
				return nil, fmt.Errorf("sweep %s value %s: %w", s.Name, g.Value, err)
			}
			st.Accuracies = append(st.Accuracies, accuracyStat{Value: g.label(), Subset: sub, Acc: acc})
		}
	}
	r0 := groups[0].Runs[0]
	if zs := r0.zeroShotCorrect(""); zs != nil {
		st.ZeroShotFile, st.ZeroShotSubset = workRelative(r0.Outcomes.ZeroShotFile), r0.Outcomes.ZeroShotSubset
		for _, sub := range subsets {
			acc, err := results.AccuracyOf([]map[string]bool{r0.zeroShotCorrect(sub)}, bs)
			if err != nil {
				return nil, err
			}
			st.Accuracies = append(st.Accuracies, accuracyStat{Value: zeroShotValue, Subset: sub, Acc: acc})
		}
	}
	add := func(a, b *group, aName, bName, subset string, expect int) error {
		strata, err := strataOf(a, b, subset)
		if err != nil {
			return err
		}
		if len(strata) == 0 {
			return nil
		}
		p, err := results.PairedDifference(strata, bs)
		if err != nil {
			return fmt.Errorf("sweep %s, %s − %s: %w", s.Name, aName, bName, err)
		}
		st.Comparisons = append(st.Comparisons, comparison{A: aName, B: bName, Subset: subset, Expect: expect, Paired: p,
			Verdict: results.VerdictOf(p.Diff, p.CI, expect)})
		return nil
	}
	for _, pr := range pairsOf(s, values, s.reference) {
		a, b, expect := orient(s, pr[0], pr[1])
		for _, sub := range subsets {
			if err := add(findGroup(groups, a), findGroup(groups, b), a, b, sub, expect); err != nil {
				return nil, err
			}
		}
	}
	for gi := range groups {
		// A trained adapter is claimed to beat the pretrained model it adapts.
		if err := add(&groups[gi], nil, groups[gi].Value, zeroShotValue, "", 1); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// table is the stats table: accuracies with their intervals, then the paired differences.
func (st *sweepStats) table(s *Sweep) *results.Table {
	t := &results.Table{Title: fmt.Sprintf("Sweep %s: accuracies and paired differences with 95 %% intervals (%s scoring)", s.Name, st.Metric),
		Label: "Accuracy / difference",
		Columns: []results.Column{{Name: "Value (%, points)", Format: "%.2f"}, {Name: "95% CI low", Format: "%.2f"},
			{Name: "95% CI high", Format: "%.2f"}, {Name: "p (exact)", Format: "%.3g"}, {Name: "A better", Format: "%.0f"},
			{Name: "B better", Format: "%.0f"}, {Name: "Problems", Format: "%.0f"}, {Name: "Seeds", Format: "%.0f"}}}
	for _, a := range st.Accuracies {
		label := a.Value
		if a.Subset != "" {
			label += " (" + a.Subset + ")"
		}
		t.Rows = append(t.Rows, results.Row{Label: label, Source: results.SourceMeasured,
			Values: []*float64{results.Float(a.Acc.Percent), results.Float(a.Acc.CI.Lo), results.Float(a.Acc.CI.Hi), nil, nil, nil, nil, nil}})
	}
	for _, c := range st.Comparisons {
		p := c.Paired
		t.Rows = append(t.Rows, results.Row{Label: c.name(), Source: results.SourceMeasured,
			Values: []*float64{results.Float(p.Diff), results.Float(p.CI.Lo), results.Float(p.CI.Hi), results.Float(p.P),
				results.Float(float64(p.Plus)), results.Float(float64(p.Minus)), results.Float(float64(p.Problems)), results.Float(float64(p.Seeds))}})
	}
	t.Notes = append(t.Notes, st.verdicts()...)
	t.Notes = append(t.Notes, st.methodNotes()...)
	return t
}

// verdicts are the comparisons' sentences.
func (st *sweepStats) verdicts() []string {
	var out []string
	for _, c := range st.Comparisons {
		out = append(out, c.Paired.Sentence(c.name(), c.Expect))
	}
	return out
}

// methodNotes say how the numbers were computed.
func (st *sweepStats) methodNotes() []string {
	notes := []string{
		"Accuracy intervals: Wilson for one evaluation (one seed, zero-shot); with several seeds a bootstrap of the pooled accuracy, problems resampled once for every seed.",
		fmt.Sprintf("Differences A − B: mean over seeds and problems of correct_A − correct_B (points); 95 %% percentile bootstrap, %d resamples (seed %d), problems resampled with every seed kept (one draw for all seeds when they share problems); p: exact two-sided sign test over problems on the difference summed over seeds (one seed: exact McNemar). A/B better: problems with a positive/negative summed difference. Runs pair by seed.", st.Resamples, st.Seed),
		"Verdicts follow from the interval: A − B claimed positive by the paper (zero- over random-init, more layers, more epochs (Tables 4-6), multimodal over text, trained over zero-shot): reproduced in direction (interval excludes 0), in direction, not significant, opposite, not significant, or opposite (interval excludes 0); no claim (K): higher/lower (interval excludes 0) or no significant difference.",
	}
	if st.ZeroShotFile != "" && st.ZeroShotSubset {
		notes = append(notes, "Zero-shot: the pretrained model on the same problems, per-problem choices from "+st.ZeroShotFile+
			", measured on a larger problem set that contains these and restricted to them; on these problems it reproduces the runs' recorded zero-shot accuracy in every category of every protocol.")
	} else if st.ZeroShotFile != "" {
		notes = append(notes, "Zero-shot: the pretrained model on the same problems, per-problem choices from "+st.ZeroShotFile+".")
	} else {
		notes = append(notes, "Zero-shot: no cached record with per-problem choices matches these runs (evaluate the base model: scienceqa eval without -adapter), so no difference against it.")
	}
	return notes
}

// correctString encodes per-problem correctness in the order of pids: '1' right, '0' wrong.
func correctString(pids []string, c map[string]bool) string {
	var b strings.Builder
	for _, pid := range pids {
		if c[pid] {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// sortedPIDs are a run's problems in pid order (numeric when they are numbers).
func sortedPIDs(c map[string]bool) []string {
	pids := make([]string, 0, len(c))
	for pid := range c {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool {
		a, ea := strconv.Atoi(pids[i])
		b, eb := strconv.Atoi(pids[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return pids[i] < pids[j]
	})
	return pids
}

// gatesFigure draws the final gates of each value's first-seed adapter side by side on one color scale (for the
// init sweep: zero- vs random-init after training), each followed by its gates over training where the run logged
// them.
func gatesFigure(s *Sweep, groups []group, dir string) (string, error) {
	var panels []results.GatePanel
	for _, g := range groups {
		r := g.Runs[0]
		p, err := pipeline.GatePanel(r.Dir, fmt.Sprintf("-%s=%s, seed %d", s.flagName(), g.label(), r.Config.Seed))
		if err != nil {
			return "", fmt.Errorf("report %s: %w", s.Name, err)
		}
		panels = append(panels, p)
		tp, ok, err := pipeline.GateTracePanel(r.Dir, g.label())
		if err != nil {
			return "", fmt.Errorf("report %s: %w", s.Name, err)
		}
		if ok {
			panels = append(panels, tp)
		}
	}
	f, err := results.GatesFigure(panels)
	if err != nil {
		return "", fmt.Errorf("report %s: %w", s.Name, err)
	}
	if err := f.Save(filepath.Join(dir, pipeline.GatesFigure)); err != nil {
		return "", fmt.Errorf("report %s: %w", s.Name, err)
	}
	return filepath.Join(dir, pipeline.GatesFigure+".{png,svg}"), nil
}
