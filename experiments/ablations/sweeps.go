package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"path/filepath"

	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	sweepsets "github.com/adapterlab/llama-adapter/experiments/sweeps"
)

// Sweep is one ablation: a list of values of one pipeline setting, each run with every seed. Sweeps are data: the
// sweep set files (experiments/sweeps) and those of a -sweeps JSON file share this type, and its JSON form is the file's.
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
	// Protocols are the scoring protocols the statistics (stats.md) state, each with its accuracies and paired
	// differences (default: the report's metric alone), e.g. ["cloze", "letter"] where the swept setting changes
	// what letter scoring reads too. Every run must have scored each.
	Protocols []string `json:"protocols,omitempty"`
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
	for _, p := range s.Protocols {
		if _, ok := evaluate.Lookup(p); !ok {
			return fmt.Errorf("sweep %s: protocols: %q is not a scoring protocol", s.Name, p)
		}
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

// Preset is a sweep set: a base configuration (a pipeline preset, cut to the set's budget) and its sweeps. Sweep
// sets are data files, experiments/sweeps/<name>.json (sweepSetFile, embedded by package sweeps), read by loadPreset.
type Preset struct {
	Name        string
	Description string // what the runs are: model, data, budget
	base        pipeline.Config
	Sweeps      []Sweep
	// ReportDir is where the reports go by default, under results/ablations ("" for that folder itself).
	ReportDir string
	// Metric is the scoring protocol the tables read ("" or "letter": the run's primary accuracy; "cloze":
	// summary.json's cloze scoring), for a model whose letter accuracy cannot move.
	Metric string
}

// Base is the configuration every run of the set starts from.
func (p *Preset) Base() pipeline.Config { return p.base }

// sweepSetFile is a sweep set's file: a pipeline configuration file ("base", "config": the budget, read by
// pipeline.LoadConfigFile) plus the sweeps and how their reports read.
type sweepSetFile struct {
	Description string          `json:"description"`
	BudgetNote  string          `json:"budget_note"` // why the budget is what it is (documentation)
	Base        string          `json:"base"`
	Config      json.RawMessage `json:"config"`
	Metric      string          `json:"metric"`
	ReportDir   string          `json:"report_dir"`
	Sweeps      []Sweep         `json:"sweeps"`
}

// sweepSetNames lists the sweep sets (pipeline.DefaultPreset's first).
func sweepSetNames() []string {
	files, _ := fs.Glob(sweepsets.Files, "*.json")
	names := []string{pipeline.DefaultPreset}
	for _, f := range files {
		if n := strings.TrimSuffix(f, ".json"); n != pipeline.DefaultPreset {
			names = append(names, n)
		}
	}
	return names
}

// loadPreset reads a sweep set: a name (experiments/sweeps/<name>.json, embedded; "default" is
// pipeline.DefaultPreset's) or the path of a user's own file of the same form.
func loadPreset(nameOrPath string) (*Preset, error) {
	if nameOrPath == "default" || nameOrPath == "" {
		nameOrPath = pipeline.DefaultPreset
	}
	name := strings.TrimSuffix(filepath.Base(nameOrPath), ".json")
	var data []byte
	var err error
	if strings.ContainsAny(nameOrPath, `/\`) || strings.HasSuffix(nameOrPath, ".json") {
		data, err = os.ReadFile(nameOrPath)
	} else if data, err = fs.ReadFile(sweepsets.Files, nameOrPath+".json"); err != nil {
		return nil, fmt.Errorf("-preset %q: no such sweep set (have %s, or a file)", nameOrPath, strings.Join(sweepSetNames(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("-preset: %w", err)
	}
	var f sweepSetFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("-preset %s: %w", nameOrPath, err)
	}
	base, err := pipeline.ParseConfigFile(data, nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("-preset %s: %w", nameOrPath, err)
	}
	p := &Preset{Name: name, Description: f.Description, base: base, Sweeps: f.Sweeps, ReportDir: f.ReportDir, Metric: f.Metric}
	for i := range p.Sweeps {
		if err := p.Sweeps[i].validate(); err != nil {
			return nil, fmt.Errorf("-preset %s: %w", nameOrPath, err)
		}
	}
	return p, nil
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
	ID     string // Config's run id
}

// dir is the run's folder.
func (r plannedRun) dir() string { return filepath.Join(r.Config.RunsDir, r.ID) }

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
			id, err := c.ID()
			if err != nil {
				return nil, fmt.Errorf("sweep %s value %s: %w", s.Name, v, err)
			}
			runs = append(runs, plannedRun{Sweep: s, Value: v, SeedIx: si, Config: c, ID: id})
		}
	}
	return runs, nil
}
