package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/results"
)

// presets loads every sweep set file (the tests' shorthand).
func presets() map[string]*Preset {
	m := map[string]*Preset{}
	for _, n := range sweepSetNames() {
		p, err := loadPreset(n)
		if err != nil {
			panic(err) // the committed sweep set files are part of the command
		}
		m[n] = p
	}
	return m
}

// TestSweepSetFiles: every sweep set reads and plans, and its epochs sweep's middle value is the budget's epoch
// count (so that run is shared with the other sweeps), mapped to the paper's 30.
func TestSweepSetFiles(t *testing.T) {
	for name, p := range presets() {
		for i := range p.Sweeps {
			s := &p.Sweeps[i]
			if _, err := plan(s, p.Base(), nil, 1); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if s.Param == "epochs" {
				mid := s.Values[len(s.Values)/2]
				if e, _ := strconv.ParseFloat(mid, 64); e != p.Base().Train.Epochs || s.Paper != nil && s.Paper[mid] != "30" {
					t.Errorf("%s: epochs sweep %v around %g", name, s.Values, p.Base().Train.Epochs)
				}
			}
		}
	}
}

// TestCommittedSweepIDs: the sweep set files plan exactly the runs the committed reports list (results/ablations/
// <report dir>/<sweep>/runs.json): value, seed and run id.
func TestCommittedSweepIDs(t *testing.T) {
	var extra []Sweep
	for _, f := range []string{"modality_lr_sweeps.json", "format_sweeps.json"} {
		ss, err := loadSweeps(f)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, ss...)
	}
	checked := 0
	for name, p := range presets() {
		if name == "paper" {
			continue // its reports would share results/ablations with smollm2's; none is committed (LLaMA-7B)
		}
		for _, s := range mergeSweeps(p.Sweeps, extra) {
			path := filepath.Join(assets.RepoRoot(), "results", "ablations", p.ReportDir, s.Name, "runs.json")
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			var recs []struct {
				Value string `json:"value"`
				Seed  uint64 `json:"seed"`
				RunID string `json:"run_id"`
			}
			if err := json.Unmarshal(data, &recs); err != nil {
				t.Fatal(err)
			}
			runs := mustPlan(t, &s, p.Base(), nil, 3)
			planned := map[string]string{}
			for _, r := range runs {
				planned[fmt.Sprintf("%s/%d", r.Value, r.Config.Seed)] = r.ID
			}
			for _, r := range recs {
				if got := planned[fmt.Sprintf("%s/%d", r.Value, r.Seed)]; got != r.RunID {
					t.Errorf("%s %s value %s seed %d: planned %q, committed %s", name, s.Name, r.Value, r.Seed, got, r.RunID)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Skip("no committed sweep reports")
	}
	t.Logf("%d committed sweep runs planned with their ids", checked)
}

func TestPlanSharingOverridesAndSeeds(t *testing.T) {
	local := presets()["stories260K"]
	byName := map[string]*Sweep{}
	for i := range local.Sweeps {
		byName[local.Sweeps[i].Name] = &local.Sweeps[i]
	}
	base := local.Base()
	shared := map[string]string{"train-limit": "24", "L": "3", "seed": "10"}
	layers := mustPlan(t, byName["layers"], base, shared, 2)
	if len(layers) != 10 {
		t.Fatalf("layers: %d runs, want 5 values × 2 seeds", len(layers))
	}
	// Seed-major order; the swept value wins over the shared -L; other shared flags apply; seeds are -seed + s.
	for i, r := range layers {
		wantL, wantSeed := i%5+1, uint64(10+i/5)
		if r.Config.Adapter.Layers != wantL || r.Config.Seed != wantSeed || r.Config.Data.TrainLimit != 24 {
			t.Errorf("run %d: L=%d seed %d train-limit %d, want L=%d seed %d train-limit 24", i, r.Config.Adapter.Layers, r.Config.Seed, r.Config.Data.TrainLimit, wantL, wantSeed)
		}
	}
	ids := map[string]bool{}
	for _, r := range layers {
		ids[r.ID] = true
	}
	if len(ids) != 10 {
		t.Errorf("%d distinct run ids for 10 different runs", len(ids))
	}

	// Without a shared -L, the modality sweep's text runs are the init sweep's zero runs (same ids); the
	// multimodal runs alone get the random-weight CLIP.
	delete(shared, "L")
	mod := mustPlan(t, byName["modality"], base, shared, 1)
	ini := mustPlan(t, byName["init"], base, shared, 1)
	if mod[0].ID != ini[0].ID {
		t.Errorf("text run %s and zero-init run %s should share an id", mod[0].ID, ini[0].ID)
	}
	if mod[0].Config.Vision.CLIP != "" || mod[1].Config.Vision.CLIP != "random" || mod[1].Config.Vision.Modality != "multimodal" {
		t.Errorf("modality runs: text clip %q, multimodal clip %q modality %q", mod[0].Config.Vision.CLIP, mod[1].Config.Vision.CLIP, mod[1].Config.Vision.Modality)
	}
	// A command-line -clip replaces the sweep's "with" setting.
	shared["clip"] = "/models/clip"
	mod = mustPlan(t, byName["modality"], base, shared, 1)
	if mod[1].Config.Vision.CLIP != "/models/clip" {
		t.Errorf("-clip on the command line should win over the sweep's, got %q", mod[1].Config.Vision.CLIP)
	}
	// The epochs sweep's middle value is the budget's epoch count: shared with the other sweeps.
	ep := mustPlan(t, byName["epochs"], base, nil, 1)
	in0 := mustPlan(t, byName["init"], base, nil, 1)
	if ep[1].ID != in0[0].ID {
		t.Errorf("epochs=%g run should be the init sweep's zero run", base.Train.Epochs)
	}
}

func TestPaperPreset(t *testing.T) {
	p := presets()["paper"]
	base := p.Base()
	if base.Adapter.Layers != 30 || base.Adapter.PromptLen != 10 || base.Data.EvalSplit != "val" || base.Train.Epochs != 30 || base.Vision.Modality != "multimodal" {
		t.Errorf("paper base: L=%d K=%d split %s epochs %g %s", base.Adapter.Layers, base.Adapter.PromptLen, base.Data.EvalSplit, base.Train.Epochs, base.Vision.Modality)
	}
	for i := range p.Sweeps {
		runs, err := plan(&p.Sweeps[i], base, nil, 1)
		if err != nil {
			t.Fatalf("sweep %s: %v", p.Sweeps[i].Name, err)
		}
		if p.Sweeps[i].Name == "modality" && runs[0].Config.Data.EvalSplit != "test" {
			t.Errorf("the paper's modality comparison is on test, planned on %s", runs[0].Config.Data.EvalSplit)
		}
		if p.Sweeps[i].Name == "layers" {
			for j, l := range []int{10, 20, 30} {
				if runs[j].Config.Adapter.Layers != l {
					t.Errorf("paper layers run %d: L=%d", j, runs[j].Config.Adapter.Layers)
				}
			}
		}
	}
}

func TestSweepValidation(t *testing.T) {
	for _, c := range []struct {
		s    Sweep
		want string
	}{
		{Sweep{Name: "a", Param: "nope", Values: []string{"1"}}, "not a pipeline flag"},
		{Sweep{Name: "a", Param: "seed", Values: []string{"1"}}, "cannot be swept"},
		{Sweep{Name: "a", Param: "L"}, "no values"},
		{Sweep{Name: "a", Param: "L", Values: []string{"1", "1"}}, "twice"},
		{Sweep{Name: "a b", Param: "L", Values: []string{"1"}}, "folder name"},
		{Sweep{Name: "a", Param: "L", Values: []string{"1"}, Set: map[string]string{"L": "2"}}, "swept flag"},
		{Sweep{Name: "a", Param: "L", Values: []string{"1"}, Set: map[string]string{"bogus": "2"}}, "not a pipeline flag"},
		{Sweep{Name: "a", Param: "L", Values: []string{"1"}, With: map[string]map[string]string{"2": {"K": "3"}}}, "not one of"},
	} {
		err := c.s.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.s, err, c.want)
		}
	}
	// A value the flag rejects fails at planning.
	s := Sweep{Name: "a", Param: "layers", Values: []string{"x"}}
	if _, err := plan(&s, presets()["stories260K"].Base(), nil, 1); err == nil {
		t.Error("L=x planned")
	}
}

func TestLoadSweepsAndSelect(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`[{"name": "layers", "param": "layers", "values": ["4", "5"]}, {"name": "gate", "param": "gate", "values": ["head-tanh", "layer"]}]`), 0o644)
	extra, err := loadSweeps(good)
	if err != nil {
		t.Fatal(err)
	}
	p := presets()["stories260K"]
	all, err := selectSweeps(p, extra, "all")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(p.Sweeps)+1 || !reflect.DeepEqual(all[0].Values, []string{"4", "5"}) || all[len(all)-1].Name != "gate" {
		t.Errorf("merged sweeps: %+v", all)
	}
	if _, err := selectSweeps(p, extra, "init,nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown sweep: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"name": "x", "param": "L", "values": ["1"], "colour": 1}]`), 0o644)
	if _, err := loadSweeps(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("unknown field: %v", err)
	}
}

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-sweep is required"},
		{[]string{"-sweep", "all", "-seeds", "0"}, "-seeds"},
		{[]string{"-sweep", "all", "-run", "x"}, "-run"},
		{[]string{"-sweep", "all", "extra"}, "unexpected"},
	} {
		if _, err := parseArgs(c.args, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
	}
	o, err := parseArgs([]string{"-sweep", "init", "-epochs", "3", "-K", "4", "-seeds", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.shared, map[string]string{"epochs": "3", "K": "4"}) || o.seeds != 2 || o.preset != "smollm2" {
		t.Errorf("parsed %+v", o)
	}
	if err := run(t.Context(), []string{"-sweep", "init", "-preset", "huge"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Errorf("unknown preset: %v", err)
	}
}

// stepMetrics is a run's metrics as the pipeline logs them: each step line with the fractional epoch it ended at,
// an epoch line after each epoch.
// mustPlan is plan failing the test on an error.
func mustPlan(t *testing.T, s *Sweep, base pipeline.Config, shared map[string]string, seeds int) []plannedRun {
	t.Helper()
	runs, err := plan(s, base, shared, seeds)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func stepMetrics(stepsPerEpoch, epochs int, loss func(step int) float64) []results.Metric {
	var ms []results.Metric
	for s := 1; s <= stepsPerEpoch*epochs; s++ {
		ms = append(ms, results.Metric{Kind: results.KindStep, Step: results.Int(s), Epoch: results.Float(float64(s) / float64(stepsPerEpoch)), Loss: results.Float(loss(s))})
		if s%stepsPerEpoch == 0 {
			ms = append(ms, results.Metric{Kind: results.KindEpoch, Step: results.Int(s), Epoch: results.Float(float64(s / stepsPerEpoch)), Loss: results.Float(-1)})
		}
	}
	return ms
}

func TestBinnedLosses(t *testing.T) {
	// 20 steps per epoch → 10 bins of 2 steps: bin b is the mean of steps 2b-1 and 2b.
	xs, ys, bins, err := binnedLosses(stepMetrics(20, 2, func(s int) float64 { return float64(s) }))
	if err != nil {
		t.Fatal(err)
	}
	if bins != 10 || len(xs) != 20 {
		t.Fatalf("bins %d, %d points; want 10 per epoch, 20", bins, len(xs))
	}
	for i := range xs {
		b := float64(i + 1)
		if math.Abs(xs[i]-b/10) > 1e-12 || ys[i] != 2*b-0.5 {
			t.Errorf("point %d: (%v, %v), want (%v, %v)", i, xs[i], ys[i], b/10, 2*b-0.5)
		}
	}
	// 3 steps per epoch → one point per step at thirds of an epoch.
	xs, ys, bins, err = binnedLosses(stepMetrics(3, 1, func(s int) float64 { return 10 * float64(s) }))
	if err != nil || bins != 3 || !reflect.DeepEqual(ys, []float64{10, 20, 30}) || math.Abs(xs[0]-1.0/3) > 1e-12 || xs[2] != 1 {
		t.Errorf("3 steps: %v %v %d %v", xs, ys, bins, err)
	}
	// Half an epoch of 20 steps (a -epochs 0.5 run: its one epoch line comes after step 10) ends at 0.5, in
	// tenths of an epoch.
	xs, ys, bins, err = binnedLosses(stepMetrics(20, 1, func(s int) float64 { return float64(s) })[:10])
	if err != nil || bins != 10 || len(xs) != 5 || math.Abs(xs[4]-0.5) > 1e-12 || ys[4] != 9.5 {
		t.Errorf("half epoch: %v %v %d %v", xs, ys, bins, err)
	}
	noEpoch := stepMetrics(3, 1, func(int) float64 { return 1 })[:2]
	for i := range noEpoch {
		noEpoch[i].Epoch = nil
	}
	if _, _, _, err := binnedLosses(noEpoch); err == nil {
		t.Error("steps without their epoch placed on an epoch axis")
	}
}

func TestLossFigureModes(t *testing.T) {
	short := runCurves{Label: "a", Runs: [][]results.Metric{stepMetrics(4, 2, func(s int) float64 { return 5 - 0.1*float64(s) })}}
	long := runCurves{Label: "b", Runs: [][]results.Metric{stepMetrics(2, 6, func(s int) float64 { return 5 - 0.1*float64(s) }),
		stepMetrics(2, 6, func(s int) float64 { return 5.2 - 0.1*float64(s) })}}
	for _, c := range []struct {
		curves []runCurves
		mode   string
		want   string
	}{
		{[]runCurves{short}, fig5Auto, "fractional epoch"},
		{[]runCurves{long}, fig5Auto, "epoch (mean"},
		{[]runCurves{long}, fig5Step, "fractional epoch"},
		{[]runCurves{short, long}, fig5Auto, "fractional epoch"},
	} {
		f, desc, err := lossFigure("t", c.curves, c.mode)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(desc, c.want) {
			t.Errorf("mode %s: axis %q, want %q", c.mode, desc, c.want)
		}
		png, err := f.Encode("png")
		if err != nil || len(png) < 1000 {
			t.Errorf("png: %d bytes, %v", len(png), err)
		}
	}
	if _, _, err := lossFigure("t", []runCurves{short}, "weekly"); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestPreciseTicks(t *testing.T) {
	// gonum's default labels for this range are "5.38, 5.42, 5.47" for ticks at 5.375, 5.425 and 5.475.
	var labels []string
	for _, tk := range (preciseTicks{}).Ticks(5.373, 5.48) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if !reflect.DeepEqual(labels, []string{"5.375", "5.425", "5.475"}) {
		t.Errorf("labels %q", labels)
	}
	// Whole-number ticks get no decimals.
	for _, tk := range (preciseTicks{}).Ticks(0, 100) {
		if strings.Contains(tk.Label, ".") {
			t.Errorf("tick %v labeled %q", tk.Value, tk.Label)
		}
	}
}

// TestExampleSweeps keeps the documented example file loadable and plannable on the local preset.
func TestExampleSweeps(t *testing.T) {
	ss, err := loadSweeps("example_sweeps.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ss {
		runs := mustPlan(t, &ss[i], presets()["stories260K"].Base(), nil, 2)
		if len(runs) != 2*len(ss[i].Values) {
			t.Errorf("sweep %s: %d runs", ss[i].Name, len(runs))
		}
	}
	if r, _ := plan(&ss[2], presets()["stories260K"].Base(), nil, 1); r[0].Config.Adapter.Init != "random" {
		t.Errorf("\"set\" not applied: init %s", r[0].Config.Adapter.Init)
	}
}

// TestSmolLM2SweepSet: the smollm2 sweep set runs the paper's L values on SmolLM2, reads its tables in cloze
// scoring, scores the zero-shot baseline, and its multimodal runs use the pinned DINOv2 tower; stories260K keeps the
// first local sweeps.
func TestSmolLM2SweepSet(t *testing.T) {
	p := presets()["smollm2"]
	base := p.Base()
	if base.Model.Path != "smollm2" || base.Adapter.Layers != 30 || p.Metric != "cloze" || !base.Eval.ZeroShot || base.Eval.Mode != pipeline.EvalScores {
		t.Fatalf("local preset: model %s, L=%d, metric %q, zero-shot %v, eval %s", base.Model.Path, base.Adapter.Layers, p.Metric, base.Eval.ZeroShot, base.Eval.Mode)
	}
	if base.Data.TrainLimit != 480 || base.Data.EvalLimit != 300 || base.Train.Epochs != 1 {
		t.Errorf("smollm2 sweep base not cut to the budget: %+v %+v", base.Data, base.Train)
	}
	byName := map[string]*Sweep{}
	for i := range p.Sweeps {
		byName[p.Sweeps[i].Name] = &p.Sweeps[i]
	}
	layers := mustPlan(t, byName["layers"], base, nil, 3)
	var ls []int
	for _, r := range layers[:3] {
		ls = append(ls, r.Config.Adapter.Layers)
	}
	if !reflect.DeepEqual(ls, []int{10, 20, 30}) || len(layers) != 9 {
		t.Errorf("layers sweep: L %v, %d runs", ls, len(layers))
	}
	mod := mustPlan(t, byName["modality"], base, nil, 1)
	if mod[1].Config.Vision.CLIP != "dinov2-s14" || mod[0].ID != layers[2].ID {
		t.Errorf("modality: multimodal tower %q; the text run shares the L=30 run: %v", mod[1].Config.Vision.CLIP, mod[0].ID == layers[2].ID)
	}
	if s := presets()["stories260K"].Base(); s.Model.Tokenizer == "smollm2" || s.Adapter.Layers != 5 {
		t.Errorf("stories260K preset changed: %+v", s.Model)
	}
}

// runs.json names run folders inside the working directory relatively (it is committed), others as they are.
func TestWorkRelative(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	if got := workRelative(filepath.Join(wd, "results", "runs", "x")); got != "results/runs/x" {
		t.Errorf("inside: %q", got)
	}
	if got := workRelative("results/runs/x"); got != "results/runs/x" {
		t.Errorf("relative: %q", got)
	}
	outside := filepath.Join(filepath.Dir(wd), "elsewhere", "x")
	if got := workRelative(outside); got != outside {
		t.Errorf("outside: %q, want %q", got, outside)
	}
}
