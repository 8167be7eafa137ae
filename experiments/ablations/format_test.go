package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
)

// outcomeBits generates a deterministic pid → correct map over n problems (a small LCG; rate ≈ p).
func outcomeBits(n int, seed uint64, p float64) map[string]bool {
	m := map[string]bool{}
	x := seed*2654435761 + 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		m[strconv.Itoa(i+1)] = float64(x>>40)/float64(1<<24) < p
	}
	return m
}

func percentOf(m map[string]bool) float64 {
	k := 0
	for _, ok := range m {
		if ok {
			k++
		}
	}
	return 100 * float64(k) / float64(len(m))
}

// meanDiff is the reference paired difference in points: mean over seeds and problems of a − b, written out
// independently of results.PairedDifference.
func meanDiff(a []map[string]bool, b []map[string]bool) float64 {
	s, n := 0.0, 0
	for i := range a {
		for pid, ok := range a[i] {
			if ok {
				s++
			}
			if b[i][pid] {
				s--
			}
			n++
		}
	}
	return 100 * s / float64(n)
}

// formatGroups are generated runs of a prompt-format sweep: 3 formats × 2 seeds on 60 problems, letter and cloze,
// each format with its own zero-shot record (different per-problem outcomes), or all sharing the first's when
// shared.
func formatGroups(shared bool) ([]group, map[string]map[string]map[string]bool) {
	values := []string{"QCM-A", "CQM-A", "QM-A"}
	zero := map[string]map[string]map[string]bool{} // value → protocol → outcomes
	var groups []group
	for vi, v := range values {
		zv := vi
		if shared {
			zv = 0
		}
		zero[v] = map[string]map[string]bool{
			"cloze":  outcomeBits(60, uint64(100+zv), 0.3+0.15*float64(zv)),
			"letter": outcomeBits(60, uint64(200+zv), 0.25+0.1*float64(zv)),
		}
		g := group{Value: v}
		for seed := uint64(0); seed < 2; seed++ {
			var c pipeline.Config
			c.Seed = seed
			o := &pipeline.Outcomes{Primary: "letter",
				Correct: map[string]map[string]bool{
					"cloze":  outcomeBits(60, uint64(10*vi)+seed, 0.5),
					"letter": outcomeBits(60, uint64(10*vi)+seed+50, 0.3),
				},
				ZeroShot: zero[v], ZeroShotFile: fmt.Sprintf("results/zero-shot/%d.json", zv), Image: map[string]bool{}}
			g.Runs = append(g.Runs, measuredRun{plannedRun: plannedRun{Value: v, Config: c}, Metric: "cloze", Outcomes: o})
		}
		groups = append(groups, g)
	}
	return groups, zero
}

// TestPerValueZeroShot: in a sweep over a setting that changes the prompt (the runs of each value matched a
// different zero-shot record), every value has its own zero-shot rows in both protocols, and "v − zero-shot (v)"
// pairs each value's runs with its own baseline, not the first value's; a sweep whose values share one record keeps
// the single "zero-shot" row.
func TestPerValueZeroShot(t *testing.T) {
	s := &Sweep{Name: "prompt-format", Param: "format", Values: []string{"QCM-A", "CQM-A", "QM-A"},
		Protocols: []string{"cloze", "letter"}, reference: "QCM-A"}
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	groups, zero := formatGroups(false)
	if !perValueZeroShot(groups) {
		t.Fatal("three zero-shot records read as one")
	}
	st, err := computeStats(s, groups)
	if err != nil {
		t.Fatal(err)
	}
	accs := map[string]float64{}
	for _, a := range st.Accuracies {
		accs[a.name()] = a.Acc.Percent
	}
	diffs := map[string]float64{}
	for _, c := range st.Comparisons {
		diffs[c.name()] = c.Paired.Diff
	}
	if len(st.ZeroShotFiles) != 3 || st.ZeroShotFile != "" || len(st.Protocols) != 2 || st.Protocols[0] != "cloze" {
		t.Errorf("records %v / %q, protocols %v", st.ZeroShotFiles, st.ZeroShotFile, st.Protocols)
	}
	for _, proto := range []string{"cloze", "letter"} {
		for gi, g := range groups {
			v := g.Value
			name := proto + ": zero-shot (" + v + ")"
			if got, ok := accs[name]; !ok || math.Abs(got-percentOf(zero[v][proto])) > 1e-9 {
				t.Errorf("%s: %v (present %v), want %v", name, got, ok, percentOf(zero[v][proto]))
			}
			var trained, own, first []map[string]bool
			for _, r := range g.Runs {
				trained = append(trained, r.Outcomes.Correct[proto])
				own = append(own, zero[v][proto])
				first = append(first, zero["QCM-A"][proto])
			}
			want := meanDiff(trained, own)
			cname := proto + ": " + v + " − zero-shot (" + v + ")"
			if got, ok := diffs[cname]; !ok || math.Abs(got-want) > 1e-9 {
				t.Errorf("%s: %v (present %v), want %v", cname, got, ok, want)
			}
			// The generated baselines differ, so reading every value against the first's would be caught.
			if gi > 0 && math.Abs(meanDiff(trained, first)-want) < 1e-9 {
				t.Fatalf("test data: %s's baseline does not differ from QCM-A's", v)
			}
			if v != "QCM-A" {
				// The setting's effect on the pretrained model: zero-shot (v) − zero-shot (QCM-A).
				zname := proto + ": zero-shot (" + v + ") − zero-shot (QCM-A)"
				want := meanDiff([]map[string]bool{zero[v][proto]}, []map[string]bool{zero["QCM-A"][proto]})
				if got, ok := diffs[zname]; !ok || math.Abs(got-want) > 1e-9 {
					t.Errorf("%s: %v (present %v), want %v", zname, got, ok, want)
				}
				var ref []map[string]bool
				for _, r := range groups[0].Runs {
					ref = append(ref, r.Outcomes.Correct[proto])
				}
				rname := proto + ": " + v + " − QCM-A"
				if got, ok := diffs[rname]; !ok || math.Abs(got-meanDiff(trained, ref)) > 1e-9 {
					t.Errorf("%s: %v (present %v), want %v", rname, got, ok, meanDiff(trained, ref))
				}
			}
		}
		if _, ok := accs[proto+": zero-shot"]; ok {
			t.Errorf("%s: a shared zero-shot row beside the per-value ones", proto)
		}
	}
	tb := st.table(s)
	text := fmt.Sprint(tb.Notes)
	if !strings.Contains(tb.Title, "cloze and letter scoring") || !strings.Contains(text, "Zero-shot, per value") {
		t.Errorf("title %q, notes %s", tb.Title, text)
	}

	// One shared record: the single "zero-shot" row and "v − zero-shot", as before per-value baselines.
	groups, zero = formatGroups(true)
	if perValueZeroShot(groups) {
		t.Fatal("one shared zero-shot record read as several")
	}
	st, err = computeStats(s, groups)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range st.Accuracies {
		if strings.Contains(a.Value, zeroShotValue) {
			n++
			if a.Value != zeroShotValue {
				t.Errorf("shared baseline row named %q", a.Value)
			}
		}
	}
	if n != 2 || st.ZeroShotFile == "" || st.ZeroShotFiles != nil {
		t.Errorf("shared baseline: %d zero-shot rows (want one per protocol), record %q / %v", n, st.ZeroShotFile, st.ZeroShotFiles)
	}
	found := false
	for _, c := range st.Comparisons {
		found = found || c.name() == "letter: CQM-A − zero-shot"
	}
	if !found {
		t.Error("shared baseline: no \"letter: CQM-A − zero-shot\" comparison")
	}

	// Without Protocols the rows are the metric's alone and unprefixed (the committed reports' form).
	s.Protocols = nil
	st, err = computeStats(s, groups)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Accuracies {
		if a.Protocol != "" || strings.Contains(a.name(), ":") {
			t.Errorf("metric-only row %q", a.name())
		}
	}
	if st.Metric != "cloze" || st.Protocols != nil {
		t.Errorf("metric %q protocols %v", st.Metric, st.Protocols)
	}
}

// TestFormatSweepFile: the prompt-format sweep plans three distinct runs on the smollm2 set, its QCM-A run is the
// reference run every other smollm2 sweep shares (same id), and an unknown protocol is refused.
func TestFormatSweepFile(t *testing.T) {
	ss, err := loadSweeps("format_sweeps.json")
	if err != nil {
		t.Fatal(err)
	}
	var fs *Sweep
	for i := range ss {
		if ss[i].Name == "prompt-format" {
			fs = &ss[i]
		}
	}
	if fs == nil {
		t.Fatal("no prompt-format sweep")
	}
	p := presets()["smollm2"]
	runs := mustPlan(t, fs, p.Base(), nil, 1)
	var layers *Sweep
	for i := range p.Sweeps {
		if p.Sweeps[i].Name == "layers" {
			layers = &p.Sweeps[i]
		}
	}
	ref := mustPlan(t, layers, p.Base(), nil, 1)[2] // L=30, the preset's own settings
	if fs.reference != "QCM-A" || runs[0].Value != "QCM-A" || runs[0].ID != ref.ID {
		t.Errorf("reference %q; QCM-A run %s, the smollm2 reference run %s", fs.reference, runs[0].ID, ref.ID)
	}
	ids := map[string]bool{}
	for _, r := range runs {
		ids[r.ID] = true
		if string(r.Config.Data.Format) != r.Value {
			t.Errorf("value %s planned with format %s", r.Value, r.Config.Data.Format)
		}
	}
	if len(ids) != 3 {
		t.Errorf("%d distinct runs, want 3", len(ids))
	}
	bad := Sweep{Name: "x", Param: "format", Values: []string{"QCM-A"}, Protocols: []string{"clozee"}}
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "clozee") {
		t.Errorf("unknown protocol: %v", err)
	}
}
