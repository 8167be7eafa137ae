package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
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

// correct is the run's per-problem correctness by protocol ("": the report's metric), on subset ("" all
// problems, "IMG").
func (m measuredRun) correct(protocol, subset string) map[string]bool {
	if protocol == "" {
		protocol = m.protocol()
	}
	return restrict(m.Outcomes.Correct[protocol], m.Outcomes.Image, subset)
}

// zeroShotCorrect is the zero-shot baseline's by the same protocol (nil: not available).
func (m measuredRun) zeroShotCorrect(protocol, subset string) map[string]bool {
	if m.Outcomes.ZeroShot == nil {
		return nil
	}
	if protocol == "" {
		protocol = m.protocol()
	}
	return restrict(m.Outcomes.ZeroShot[protocol], m.Outcomes.Image, subset)
}

// zeroShotRun is the group's first run with a zero-shot baseline (nil: none has one). The baseline does not
// depend on the seed: every run of a value is evaluated on the same problems with the same prompts.
func (g *group) zeroShotRun() *measuredRun {
	for i := range g.Runs {
		if g.Runs[i].Outcomes != nil && g.Runs[i].Outcomes.ZeroShot != nil {
			return &g.Runs[i]
		}
	}
	return nil
}

// perValueZeroShot reports whether the values' runs matched different zero-shot records: the swept setting
// changes what the pretrained model is asked (the prompt format, captions, the evaluation problems), so each value
// has its own baseline and is read against it, not against the first value's.
func perValueZeroShot(groups []group) bool {
	file := ""
	for gi := range groups {
		r := groups[gi].zeroShotRun()
		if r == nil {
			continue
		}
		if file == "" {
			file = r.Outcomes.ZeroShotFile
		} else if r.Outcomes.ZeroShotFile != file {
			return true
		}
	}
	return false
}

// zeroShotName is the comparisons' name for a value's zero-shot baseline: "zero-shot" when the values share one,
// "zero-shot (<value>)" when each has its own.
func zeroShotName(g *group, perValue bool) string {
	if perValue {
		return zeroShotValue + " (" + g.label() + ")"
	}
	return zeroShotValue
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
	Value  string `json:"value"`
	Subset string `json:"subset,omitempty"`
	// Protocol is the scoring protocol when the sweep states several (Sweep.Protocols); "" : the metric.
	Protocol string           `json:"protocol,omitempty"`
	Acc      results.Accuracy `json:"accuracy"`
}

func (a accuracyStat) name() string {
	n := a.Value
	if a.Subset != "" {
		n += " (" + a.Subset + ")"
	}
	if a.Protocol != "" {
		n = a.Protocol + ": " + n
	}
	return n
}

// comparison is one paired difference A − B.
type comparison struct {
	A, B     string
	Subset   string `json:"subset,omitempty"`
	Protocol string `json:"protocol,omitempty"` // as accuracyStat's
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
	if c.Protocol != "" {
		n = c.Protocol + ": " + n
	}
	return n
}

// sweepStats are a sweep's accuracies and differences.
type sweepStats struct {
	Metric string `json:"metric"`
	// Protocols are the protocols stated when the sweep asks for several (the metric first).
	Protocols    []string `json:"protocols,omitempty"`
	Reference    string   `json:"reference_value"`
	ZeroShotFile string   `json:"zero_shot_record,omitempty"`
	// ZeroShotFiles are the values' own zero-shot records (value → file) when they differ (perValueZeroShot);
	// ZeroShotFile is then empty.
	ZeroShotFiles map[string]string `json:"zero_shot_records,omitempty"`
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

// strataOf pairs the runs of two groups seed by seed (B nil: the zero-shot baseline of each of A's runs, the
// pretrained model asked as that run was), by protocol ("": the metric).
func strataOf(a, b *group, protocol, subset string) ([]results.Stratum, error) {
	var strata []results.Stratum
	for _, ra := range a.Runs {
		var cb map[string]bool
		if b == nil {
			cb = ra.zeroShotCorrect(protocol, subset)
		} else {
			for _, rb := range b.Runs {
				if rb.Config.Seed == ra.Config.Seed {
					cb = rb.correct(protocol, subset)
				}
			}
		}
		if cb == nil {
			continue
		}
		st, err := results.NewStratum("seed "+strconv.FormatUint(ra.Config.Seed, 10), ra.correct(protocol, subset), cb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ra.Dir, err)
		}
		strata = append(strata, st)
	}
	return strata, nil
}

// statProtocols are the protocols a sweep's statistics state: the metric first, then the sweep's other
// Protocols. One protocol is named "" (the metric, rows unprefixed, as before Protocols existed).
func statProtocols(s *Sweep, metric string) []string {
	out := []string{""}
	for _, p := range s.Protocols {
		if p != metric && !slices.Contains(out[1:], p) {
			out = append(out, p)
		}
	}
	if len(out) == 1 {
		return out
	}
	out[0] = metric
	return out
}

// computeStats computes a sweep's accuracies with intervals and its paired differences: per protocol (the metric,
// then Sweep.Protocols'), every value's accuracy, the zero-shot baseline's (each value's own where the values'
// runs matched different zero-shot records), every value − reference (and numeric neighbours), and every value −
// its zero-shot baseline.
func computeStats(s *Sweep, groups []group) (*sweepStats, error) {
	b := newStatsBuilder(s, groups)
	for _, proto := range statProtocols(s, b.st.Metric) {
		for _, step := range []func(string) error{b.accuracies, b.zeroShotAccuracies, b.valueDifferences,
			b.zeroShotDifferences, b.trainedOverZeroShot} {
			if err := step(proto); err != nil {
				return nil, err
			}
		}
	}
	return b.st, nil
}

// statsBuilder is computeStats' state: the sweep, its groups, the subsets stated (IMG for modality), whether each
// value has its own zero-shot record, and the statistics so far.
type statsBuilder struct {
	s        *Sweep
	groups   []group
	values   []string
	subsets  []string
	perValue bool
	bs       results.Bootstrap
	st       *sweepStats
}

func newStatsBuilder(s *Sweep, groups []group) *statsBuilder {
	b := &statsBuilder{s: s, groups: groups, subsets: []string{""}, perValue: perValueZeroShot(groups),
		st: &sweepStats{Metric: groups[0].Runs[0].protocol(), Reference: s.reference,
			Resamples: results.DefaultResamples, Seed: results.DefaultBootstrapSeed}}
	if protocols := statProtocols(s, b.st.Metric); len(protocols) > 1 {
		b.st.Protocols = protocols
	}
	if s.flagName() == "modality" {
		b.subsets = append(b.subsets, "IMG")
	}
	for gi := range groups {
		b.values = append(b.values, groups[gi].Value)
	}
	if b.perValue {
		b.st.ZeroShotFiles = map[string]string{}
		for gi := range groups {
			if r := groups[gi].zeroShotRun(); r != nil {
				b.st.ZeroShotFiles[groups[gi].label()] = workRelative(r.Outcomes.ZeroShotFile)
				b.st.ZeroShotSubset = b.st.ZeroShotSubset || r.Outcomes.ZeroShotSubset
			}
		}
	} else if r0 := groups[0].zeroShotRun(); r0 != nil {
		b.st.ZeroShotFile, b.st.ZeroShotSubset = workRelative(r0.Outcomes.ZeroShotFile), r0.Outcomes.ZeroShotSubset
	}
	return b
}

// accuracies states every value's accuracy (pooled over its seeds) in each subset.
func (b *statsBuilder) accuracies(proto string) error {
	for gi := range b.groups {
		g := &b.groups[gi]
		for _, r := range g.Runs {
			if r.correct(proto, "") == nil {
				return fmt.Errorf("sweep %s value %s: %s has no %s predictions (the sweep's protocols need every run to score them)", b.s.Name, g.Value, r.Dir, proto)
			}
		}
		for _, sub := range b.subsets {
			var seeds []map[string]bool
			for _, r := range g.Runs {
				seeds = append(seeds, r.correct(proto, sub))
			}
			acc, err := results.AccuracyOf(seeds, b.bs)
			if err != nil {
				return fmt.Errorf("sweep %s value %s: %w", b.s.Name, g.Value, err)
			}
			b.st.Accuracies = append(b.st.Accuracies, accuracyStat{Value: g.label(), Subset: sub, Protocol: proto, Acc: acc})
		}
	}
	return nil
}

// zeroShotAccuracies states the zero-shot rows: the first value's baseline when all share it, else every value's own.
func (b *statsBuilder) zeroShotAccuracies(proto string) error {
	for gi := range b.groups {
		if gi > 0 && !b.perValue {
			break
		}
		r := b.groups[gi].zeroShotRun()
		if r == nil || r.zeroShotCorrect(proto, "") == nil {
			continue
		}
		for _, sub := range b.subsets {
			acc, err := results.AccuracyOf([]map[string]bool{r.zeroShotCorrect(proto, sub)}, b.bs)
			if err != nil {
				return err
			}
			b.st.Accuracies = append(b.st.Accuracies, accuracyStat{Value: zeroShotName(&b.groups[gi], b.perValue), Subset: sub, Protocol: proto, Acc: acc})
		}
	}
	return nil
}

// add states the paired difference a − b (b nil: a's zero-shot baseline) over the runs' shared problems and seeds.
func (b *statsBuilder) add(ga, gb *group, aName, bName, proto, subset string, expect int) error {
	strata, err := strataOf(ga, gb, proto, subset)
	if err != nil {
		return err
	}
	return b.record(aName, bName, proto, subset, expect, strata)
}

// record states the paired difference aName − bName over strata (none: nothing to state), with its verdict for
// the claimed direction expect.
func (b *statsBuilder) record(aName, bName, proto, subset string, expect int, strata []results.Stratum) error {
	if len(strata) == 0 {
		return nil
	}
	p, err := results.PairedDifference(strata, b.bs)
	if err != nil {
		return fmt.Errorf("sweep %s, %s − %s: %w", b.s.Name, aName, bName, err)
	}
	b.st.Comparisons = append(b.st.Comparisons, comparison{A: aName, B: bName, Subset: subset, Protocol: proto, Expect: expect, Paired: p,
		Verdict: results.VerdictOf(p.Diff, p.CI, expect)})
	return nil
}

// valueDifferences states every value − reference (and numeric neighbours), oriented as the paper claims.
func (b *statsBuilder) valueDifferences(proto string) error {
	for _, pr := range pairsOf(b.s, b.values, b.s.reference) {
		x, y, expect := orient(b.s, pr[0], pr[1])
		for _, sub := range b.subsets {
			if err := b.add(findGroup(b.groups, x), findGroup(b.groups, y), x, y, proto, sub, expect); err != nil {
				return err
			}
		}
	}
	return nil
}

// zeroShotDifferences states, where each value has its own baseline, what the setting does to the pretrained model
// itself: each value's baseline against the reference value's (one evaluation each, paired over problems; no
// claimed direction).
func (b *statsBuilder) zeroShotDifferences(proto string) error {
	if !b.perValue {
		return nil
	}
	for _, pr := range pairsOf(b.s, b.values, b.s.reference) {
		x, y, _ := orient(b.s, pr[0], pr[1])
		ga, gb := findGroup(b.groups, x), findGroup(b.groups, y)
		ra, rb := ga.zeroShotRun(), gb.zeroShotRun()
		if ra == nil || rb == nil || ra.zeroShotCorrect(proto, "") == nil || rb.zeroShotCorrect(proto, "") == nil {
			continue
		}
		an, bn := zeroShotName(ga, true), zeroShotName(gb, true)
		stratum, err := results.NewStratum(zeroShotValue, ra.zeroShotCorrect(proto, ""), rb.zeroShotCorrect(proto, ""))
		if err != nil {
			return fmt.Errorf("sweep %s, %s − %s: %w", b.s.Name, an, bn, err)
		}
		if err := b.record(an, bn, proto, "", 0, []results.Stratum{stratum}); err != nil {
			return err
		}
	}
	return nil
}

// trainedOverZeroShot states every value − its zero-shot baseline: a trained adapter is claimed to beat the
// pretrained model it adapts (asked the same way: each run pairs with its own zero-shot record).
func (b *statsBuilder) trainedOverZeroShot(proto string) error {
	for gi := range b.groups {
		if err := b.add(&b.groups[gi], nil, b.groups[gi].Value, zeroShotName(&b.groups[gi], b.perValue), proto, "", 1); err != nil {
			return err
		}
	}
	return nil
}

// table is the stats table: accuracies with their intervals, then the paired differences.
func (st *sweepStats) table(s *Sweep) *results.Table {
	scoring := st.Metric
	if len(st.Protocols) > 0 {
		scoring = strings.Join(st.Protocols, " and ")
	}
	t := &results.Table{Title: fmt.Sprintf("Sweep %s: accuracies and paired differences with 95 %% intervals (%s scoring)", s.Name, scoring),
		Label: "Accuracy / difference",
		Columns: []results.Column{{Name: "Value (%, points)", Format: "%.2f"}, {Name: "95% CI low", Format: "%.2f"},
			{Name: "95% CI high", Format: "%.2f"}, {Name: "p (exact)", Format: "%.3g"}, {Name: "A better", Format: "%.0f"},
			{Name: "B better", Format: "%.0f"}, {Name: "Problems", Format: "%.0f"}, {Name: "Seeds", Format: "%.0f"}}}
	for _, a := range st.Accuracies {
		t.Rows = append(t.Rows, results.Row{Label: a.name(), Source: results.SourceMeasured,
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
	if len(st.ZeroShotFiles) > 0 {
		var parts []string
		for _, v := range sortedKeys(st.ZeroShotFiles) {
			parts = append(parts, v+": "+st.ZeroShotFiles[v])
		}
		line := "Zero-shot, per value: the swept setting changes what the pretrained model is asked, so each value has its own baseline, the pretrained model asked the same way on the same problems (\"zero-shot (<value>)\"), and \"<value> − zero-shot (<value>)\" pairs each run with it; per-problem choices from " + strings.Join(parts, "; ") + "."
		if st.ZeroShotSubset {
			line += " Records measured on a larger problem set are restricted to these problems (reproducing the runs' recorded zero-shot accuracies in every category of every protocol)."
		}
		notes = append(notes, line)
	} else if st.ZeroShotFile != "" && st.ZeroShotSubset {
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
