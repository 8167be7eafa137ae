package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/results"
)

// tinySweeps are two small sweeps sharing a run (L=2 zero-init): the layers table and Figure 5.
const tinySweeps = `[
  {"name": "tiny-layers", "param": "layers", "values": ["1", "2"], "paper": {"2": "30"}},
  {"name": "tiny-init", "param": "init", "values": ["zero", "random"], "set": {"L": "2"}}
]`

// tinyArgs is the stories260K preset cut to seconds per run: stories260K on 24 training and 12 evaluation problems, one
// epoch, a checkpoint after every step.
func tinyArgs(t *testing.T, dir string, extra ...string) []string {
	t.Helper()
	sweeps := filepath.Join(dir, "sweeps.json")
	if err := os.WriteFile(sweeps, []byte(tinySweeps), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-preset", "stories260K", "-sweeps", sweeps, "-sweep", "tiny-layers,tiny-init", "-seeds", "2",
		"-runs", filepath.Join(dir, "runs"), "-out", filepath.Join(dir, "out"),
		"-train-limit", "24", "-eval-limit", "12", "-epochs", "1", "-max-len", "160", "-checkpoint-every", "1",
		// The pure-Go backend compiles these tiny graphs faster than XLA's CPU plugin (when one is installed).
		"-backend", "go:ops_sequential"}
	return append(args, extra...)
}

// killWriter passes output through and cancels the sweep the first time training progress follows marker (the
// sweep's progress line of one run): a simulated kill in the middle of a sweep and, with a checkpoint after
// every step, in the middle of that run's training.
type killWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
	fired  bool
}

var progressBar = regexp.MustCompile(`[\r\n]train `)

func (k *killWriter) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.buf.Write(p)
	if !k.fired {
		s := k.buf.String()
		// A line starting "train " is the training progress bar, first drawn at the run's first optimizer step.
		if i := strings.Index(s, k.marker); i >= 0 && progressBar.MatchString(s[i:]) {
			k.fired = true
			k.cancel()
		}
	}
	return k.w.Write(p)
}

func TestSweepRunSkipResumeReport(t *testing.T) {
	assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	model := assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	dir := t.TempDir()
	args := tinyArgs(t, dir)

	// 1. Interrupted during the second of 6 distinct runs (the L=2 zero-init run is shared by both sweeps).
	plans, killed, ckptLeft := interruptedSweep(t, args)
	resumeLine := "] " + killed.describe() + " (partial)"

	// 2. The same command completes the sweep, resuming the killed run.
	var out2 bytes.Buffer
	if err := run(context.Background(), args, &out2, io.Discard); err != nil {
		t.Fatalf("resumed sweep: %v\n%s", err, out2.String())
	}
	s2 := out2.String()
	if !strings.Contains(s2, resumeLine) {
		t.Errorf("rerun should find %s partial:\n%s", killed.describe(), s2)
	}
	if ckptLeft && !strings.Contains(s2, "resuming from") {
		t.Errorf("the killed run left a checkpoint but was not resumed from it:\n%s", s2)
	}
	for _, ps := range plans {
		for _, r := range ps {
			if st := runState(r); st != "complete" {
				t.Errorf("%s is %s after the rerun", r.describe(), st)
			}
		}
	}
	mtimes := metricsTimes(t, plans)

	// 3. A third time nothing trains.
	var out3 bytes.Buffer
	if err := run(context.Background(), args, &out3, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out3.String(), "is complete: skipping"); n != 6 || strings.Contains(out3.String(), "train e") {
		t.Errorf("third run: %d skips (want 6), or training happened:\n%s", n, out3.String())
	}
	for p, m := range metricsTimes(t, plans) {
		if !m.Equal(mtimes[p]) {
			t.Errorf("%s was rewritten by a run that should have skipped", p)
		}
	}

	// 4. -report into a fresh folder: tables and figures from the run folders alone.
	out := filepath.Join(dir, "report")
	var out4 bytes.Buffer
	if err := run(context.Background(), append(args, "-report", "-out", out), &out4, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tiny-layers/table.txt", "tiny-layers/table.md", "tiny-layers/table.json", "tiny-layers/runs.json",
		"tiny-layers/layers.png", "tiny-layers/layers.svg", "tiny-layers/loss_curves.png", "tiny-layers/loss_curves.svg",
		"tiny-init/table.txt", "tiny-init/table.md", "tiny-init/table.json", "tiny-init/figure5.png", "tiny-init/figure5.svg",
		"tiny-init/stats.txt", "tiny-init/stats.md", "tiny-init/stats.json", "tiny-init/comparisons.json", "tiny-init/gates.png", "tiny-init/gates.svg"} {
		data, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || len(data) == 0 {
			t.Errorf("%s missing or empty (%v)", f, err)
			continue
		}
		if strings.HasSuffix(f, ".png") && !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", f)
		}
	}
	// The init sweep's gates figure: each value's final gates and, logged during training, their course.
	if svg, err := os.ReadFile(filepath.Join(out, "tiny-init", "gates.svg")); err != nil || bytes.Count(svg, []byte("over heads, by step")) != 2 {
		t.Errorf("tiny-init/gates.svg: want both values' gates over training (%v)", err)
	}

	checkReportTables(t, out, model)

	// 5. -report with runs that do not exist names them.
	err := run(context.Background(), append(args, "-report", "-seeds", "3", "-out", out), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "seed 2") || !strings.Contains(err.Error(), "not started") {
		t.Errorf("-report with a missing seed: %v", err)
	}
}

// interruptedSweep runs the sweeps of args and cancels them once the second of their 6 distinct runs draws its
// training progress bar. It returns every planned run, the killed one (the first incomplete run, which must be
// partial) and whether the killed run left a checkpoint.
func interruptedSweep(t *testing.T, args []string) (plans [][]plannedRun, killed plannedRun, ckptLeft bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out1 bytes.Buffer
	kw := &killWriter{w: &out1, marker: "[2/6]", cancel: cancel}
	start := time.Now()
	err := run(ctx, args, kw, io.Discard)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted sweep: got %v, want context.Canceled\n%s", err, out1.String())
	}
	if !strings.Contains(out1.String(), "8 runs, 6 distinct") {
		t.Errorf("the shared run should be planned once:\n%s", out1.String())
	}
	o, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	plans = planAll(t, o)
	// The first incomplete run is the killed one: its folder exists (config.json, maybe a checkpoint) without a
	// complete summary.
	var first *plannedRun
	for _, ps := range plans {
		for i := range ps {
			if first == nil && runState(ps[i]) != "complete" {
				first = &ps[i]
			}
		}
	}
	if first == nil || runState(*first) != "partial" {
		t.Fatalf("after the kill, the first incomplete run should be partial: %v\n%s", first, out1.String())
	}
	_, ckptErr := os.Stat(filepath.Join(first.dir(), pipeline.CheckpointFile))
	t.Logf("interrupted %s after %v (checkpoint left: %v)", first.describe(), time.Since(start).Round(time.Millisecond), ckptErr == nil)
	return plans, *first, ckptErr == nil
}

// checkReportTables checks the report's Table 4 and Table 5 against the run folders' own records: parameters equal
// adapter.Count for stories260K (model), accuracy and spread are the mean and sample std of the per-run accuracies
// of runs.json, and Table 5's gain is zero-init minus random-init.
func checkReportTables(t *testing.T, out, model string) {
	t.Helper()
	mf, err := os.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := llama.ConfigFromLlama2c(mf)
	mf.Close()
	if err != nil {
		t.Fatal(err)
	}
	t4 := readTable(t, filepath.Join(out, "tiny-layers", "table.json"))
	accByValue := runAccuracies(t, filepath.Join(out, "tiny-layers", "runs.json"))
	col := columns(t4)
	if len(t4.Rows) != 2 {
		t.Fatalf("Table 4 has %d rows, want 2", len(t4.Rows))
	}
	for _, r := range t4.Rows {
		l, _ := strconv.Atoi(r.Label)
		want := adapter.Count(adapter.Config{Layers: l, PromptLen: 10, Gate: adapter.GateHeadTanh}, mc).Total()
		if got := r.Values[col["Params"]]; got == nil || int(*got) != want {
			t.Errorf("Table 4 L=%d: params %v, adapter.Count says %d", l, deref(got), want)
		}
		mean, std := meanStd(accByValue[r.Label])
		if got := r.Values[col["Val Acc (%)"]]; got == nil || math.Abs(*got-mean) > 1e-9 {
			t.Errorf("Table 4 L=%d: accuracy %v, runs give mean %v", l, deref(got), mean)
		}
		if got := r.Values[col["Val Acc (%) ±"]]; got == nil || math.Abs(*got-std) > 1e-9 {
			t.Errorf("Table 4 L=%d: spread %v, runs give std %v", l, deref(got), std)
		}
	}
	if v := t4.Rows[1].Values[col["Paper Val Acc (%)"]]; v == nil || *v != 83.85 {
		t.Errorf("Table 4 L=2 should sit beside the paper's L=30 (83.85), has %v", deref(v))
	}
	if v := t4.Rows[0].Values[col["Paper L"]]; v != nil {
		t.Errorf("Table 4 L=1 has no paper row, shows %v", *v)
	}

	// Table 5: the gain is zero-init minus random-init.
	t5 := readTable(t, filepath.Join(out, "tiny-init", "table.json"))
	rnd, zero, gain := t5.Rows[0].Values[0], t5.Rows[1].Values[0], t5.Rows[2].Values[0]
	if rnd == nil || zero == nil || gain == nil || math.Abs(*gain-(*zero-*rnd)) > 1e-9 {
		t.Errorf("Table 5 gain %v != %v - %v", deref(gain), deref(zero), deref(rnd))
	}
	ia := runAccuracies(t, filepath.Join(out, "tiny-init", "runs.json"))
	if m, _ := meanStd(ia["zero"]); zero == nil || math.Abs(*zero-m) > 1e-9 {
		t.Errorf("Table 5 zero-init %v, runs give %v", deref(zero), m)
	}
}

// planAll plans the sweeps o names, as run does.
func planAll(t *testing.T, o *options) [][]plannedRun {
	t.Helper()
	p, err := loadPreset(o.preset)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := loadSweeps(o.sweepsFile)
	if err != nil {
		t.Fatal(err)
	}
	sweeps, err := selectSweeps(p, extra, o.sweep)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]plannedRun
	for i := range sweeps {
		ps := mustPlan(t, &sweeps[i], p.Base(), o.shared, o.seeds)
		out = append(out, ps)
	}
	return out
}

func metricsTimes(t *testing.T, plans [][]plannedRun) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	for _, ps := range plans {
		for _, r := range ps {
			p := filepath.Join(r.dir(), results.MetricsFile)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			m[p] = st.ModTime()
		}
	}
	return m
}

func readTable(t *testing.T, path string) *results.Table {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := results.DecodeTable(data)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func columns(t *results.Table) map[string]int {
	m := map[string]int{}
	for i, c := range t.Columns {
		m[c.Name] = i
	}
	return m
}

// runAccuracies reads runs.json: value → accuracy of each seed's run.
func runAccuracies(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Value    string            `json:"value"`
		ValAcc   *float64          `json:"val_acc"`
		Problems []string          `json:"problems"`
		Correct  map[string]string `json:"correct"`
	}
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	m := map[string][]float64{}
	for _, r := range recs {
		if r.ValAcc == nil {
			t.Fatalf("%s: run of %s without accuracy", path, r.Value)
		}
		m[r.Value] = append(m[r.Value], *r.ValAcc)
		// The per-problem correctness recomputes the accuracy (of the primary protocol, one of those kept).
		recomputed := false
		for _, c := range r.Correct {
			if len(c) != len(r.Problems) {
				t.Errorf("%s: %d outcomes for %d problems", path, len(c), len(r.Problems))
			}
			if math.Abs(100*float64(strings.Count(c, "1"))/float64(len(c))-*r.ValAcc) < 1e-9 {
				recomputed = true
			}
		}
		if !recomputed {
			t.Errorf("%s: no protocol's per-problem correctness gives val_acc %v", path, *r.ValAcc)
		}
	}
	return m
}

// meanStd is the reference mean and sample standard deviation, written out independently of newStat.
func meanStd(xs []float64) (float64, float64) {
	var s, ss float64
	for _, x := range xs {
		s += x
	}
	mean := s / float64(len(xs))
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

func deref(p *float64) any {
	if p == nil {
		return "nil"
	}
	return *p
}
