// Command ablations runs the paper's ablations as sweeps of pipeline runs and builds their tables and figures:
// Table 4 (adapted layers L), Table 5 and Figure 5 (zero-init vs random-init gating), Table 6 (epochs), and two
// the paper has no table for: prompt length K and text vs multimodal.
//
//	go run ./experiments/ablations -sweep NAME|all [-preset smollm2|stories260K|paper|FILE] [-seeds N] [-report]
//	    [-sweeps FILE] [-out results/ablations] [-fig5 auto|epoch|step] [-list] [any pipeline flag, shared by every run]
//
// A sweep set (-preset) is a data file, experiments/sweeps/<name>.json: the pipeline preset it starts from, the
// budget that cuts it to size, and its sweeps; a user's own file of that form works the same way.
//
// Each sweep runs every value × seed (seed s of N is -seed + s) through pipeline.Run, in
// <runs>/<run id>: a complete folder is skipped and a partial one resumed, and runs with identical settings
// (the same run id) are shared between sweeps and run once. Then each sweep's table (terminal, Markdown, JSON)
// and figures (PNG, SVG) go to <out>/<sweep>/. -report only builds them from existing run folders.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/models/device"
)

// options are the command's own flags (the pipeline's flags are shared by every run).
type options struct {
	sweep, preset, sweepsFile, out, fig5 string
	seeds                                int
	report, list                         bool
	shared                               map[string]string // pipeline flags given on the command line
}

// parseArgs parses the command line: the command's flags and every pipeline flag.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("ablations", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.sweep, "sweep", "", "sweep to run: a name (layers, init, epochs, prompt-len, modality, or one of -sweeps), a comma-separated list, or all")
	fs.StringVar(&o.preset, "preset", pipeline.DefaultPreset, "sweep set: "+strings.Join(sweepSetNames(), ", ")+" (experiments/sweeps/<name>.json: smollm2 CPU-sized, stories260K the first local sweeps, paper LLaMA-7B), or a file of that form")
	fs.IntVar(&o.seeds, "seeds", 3, "seeds per value (seed s of N runs with -seed + s)")
	fs.BoolVar(&o.report, "report", false, "only build the tables and figures from existing run folders")
	fs.BoolVar(&o.list, "list", false, "print the sweeps' runs and whether each is complete; run nothing")
	fs.StringVar(&o.sweepsFile, "sweeps", "", "JSON file of extra sweeps ([{\"name\", \"param\", \"values\", \"paper\", \"set\", \"with\", \"note\"}]); a name of the preset replaces its sweep")
	fs.StringVar(&o.out, "out", "", "folder of the sweeps' tables and figures (<out>/<sweep>/); default results/ablations/<the sweep set's report_dir>")
	fs.StringVar(&o.fig5, "fig5", fig5Auto, "loss curves' x axis: epoch (one point per epoch), step (step losses per 1/10 epoch) or auto (epoch from 5 epochs up)")
	var scratch pipeline.Config // only names the flags: a flag given on the command line overrides the sweep set's value
	scratch.Flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ablations -sweep NAME|all [-preset NAME|FILE] [-seeds N] [-report] [pipeline flags]\n")
		fmt.Fprintf(stderr, "Pipeline flags override the sweep set's settings for every run (its values are in experiments/sweeps/<name>.json and its base preset).\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.sweep == "" && !o.list {
		fs.Usage()
		return nil, errors.New("-sweep is required (a sweep name or all; -list shows them)")
	}
	if o.seeds < 1 {
		return nil, fmt.Errorf("-seeds %d: want at least 1", o.seeds)
	}
	pf := flag.NewFlagSet("", flag.ContinueOnError)
	var pc pipeline.Config
	pc.Flags(pf)
	o.shared = map[string]string{}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if pf.Lookup(f.Name) == nil {
			return
		}
		if f.Name == "run" {
			err = errors.New("-run names one run; a sweep's run ids come from their settings")
		}
		o.shared[f.Name] = f.Value.String()
	})
	return o, err
}

// selectSweeps returns the preset's sweeps named by -sweep (all: every one), in the order given.
func selectSweeps(p *Preset, extra []Sweep, names string) ([]Sweep, error) {
	all := mergeSweeps(p.Sweeps, extra)
	if names == "" || names == "all" {
		return all, nil
	}
	var out []Sweep
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, s := range all {
			if s.Name == n {
				out, found = append(out, s), true
			}
		}
		if !found {
			var known []string
			for _, s := range all {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("-sweep %q: preset %s has no such sweep (have %s, or all)", n, p.Name, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// run is the command: it plans the sweeps, runs the missing runs (unless -report or -list) and writes the
// reports.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	p, err := loadPreset(o.preset)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join("results", "ablations", p.ReportDir)
	}
	var extra []Sweep
	if o.sweepsFile != "" {
		if extra, err = loadSweeps(o.sweepsFile); err != nil {
			return err
		}
	}
	sweeps, err := selectSweeps(p, extra, o.sweep)
	if err != nil {
		return err
	}
	if !o.list && !o.report {
		// The backend is the command line's choice (-backend, -install) for every run.
		c := p.Base()
		if err := setFlags(&c, o.shared, "command line"); err != nil {
			return err
		}
		pipeline.EnsureBackend(c, stdout)
	}
	plans, unique, err := planSweeps(sweeps, p.Base(), o, stdout, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "preset %s: %s\n", p.Name, p.Description)
	if o.list {
		listPlans(sweeps, plans, stdout)
		return nil
	}
	if !o.report {
		if err := runAll(ctx, unique, stdout); err != nil {
			return err
		}
	}
	// Every sweep whose runs are all complete gets its report; the others are named in the error.
	var errs []error
	for i := range sweeps {
		groups, err := collect(plans[i], p.Metric)
		if err != nil {
			errs = append(errs, fmt.Errorf("report %s: %w", sweeps[i].Name, err))
			continue
		}
		if err := writeReport(&sweeps[i], groups, filepath.Join(o.out, sweeps[i].Name), o.fig5, stdout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// planSweeps plans every sweep and returns the plans and the distinct runs among them (identical settings run once).
func planSweeps(sweeps []Sweep, base pipeline.Config, o *options, stdout, stderr io.Writer) ([][]plannedRun, []plannedRun, error) {
	plans := make([][]plannedRun, len(sweeps))
	var unique []plannedRun
	seen := map[string]bool{}
	total := 0
	for i := range sweeps {
		if v, ok := o.shared[sweeps[i].flagName()]; ok {
			fmt.Fprintf(stderr, "note: -%s=%s is ignored by sweep %s, which varies it\n", sweeps[i].flagName(), v, sweeps[i].Name)
		}
		var err error
		if plans[i], err = plan(&sweeps[i], base, o.shared, o.seeds); err != nil {
			return nil, nil, err
		}
		total += len(plans[i])
		for _, r := range plans[i] {
			if !seen[r.dir()] {
				seen[r.dir()] = true
				unique = append(unique, r)
			}
		}
	}
	if len(o.shared) > 0 {
		var fl []string
		for _, n := range sortedKeys(o.shared) {
			fl = append(fl, fmt.Sprintf("-%s=%s", n, o.shared[n]))
		}
		fmt.Fprintf(stdout, "for every run: %s\n", strings.Join(fl, " "))
	}
	fmt.Fprintf(stdout, "%d sweep(s), %d runs, %d distinct (identical settings run once)\n", len(sweeps), total, len(unique))
	return plans, unique, nil
}

// listPlans prints each sweep's runs and whether each is complete (-list).
func listPlans(sweeps []Sweep, plans [][]plannedRun, stdout io.Writer) {
	for i, s := range sweeps {
		fmt.Fprintf(stdout, "sweep %s: -%s ∈ {%s}\n", s.Name, s.flagName(), strings.Join(s.Values, ", "))
		for _, r := range plans[i] {
			fmt.Fprintf(stdout, "  %-40s %s [%s]\n", r.describe(), r.ID, runState(r))
		}
	}
}

// runAll runs the distinct runs in order (complete ones are skipped by pipeline.Run, partial ones resume).
func runAll(ctx context.Context, unique []plannedRun, stdout io.Writer) error {
	complete := 0
	for _, r := range unique {
		if runState(r) == "complete" {
			complete++
		}
	}
	fmt.Fprintf(stdout, "%d of %d distinct runs already complete\n", complete, len(unique))
	start := time.Now()
	for i, r := range unique {
		fmt.Fprintf(stdout, "\n[%d/%d] %s (%s)\n", i+1, len(unique), r.describe(), runState(r))
		t0 := time.Now()
		res, err := pipeline.Run(ctx, r.Config, stdout)
		if err != nil {
			return fmt.Errorf("sweep run %s (%s): %w", r.describe(), r.ID, err)
		}
		if !res.Skipped {
			fmt.Fprintf(stdout, "[%d/%d] done in %s (sweep so far %s)\n", i+1, len(unique),
				time.Since(t0).Round(time.Second), time.Since(start).Round(time.Second))
		}
	}
	return nil
}

// runState is "complete", "partial" (a folder without a complete summary: it will resume) or "new".
func runState(r plannedRun) string {
	dir := r.dir()
	if groups, err := collect([]plannedRun{r}, ""); err == nil && len(groups) == 1 {
		return "complete"
	}
	if _, err := os.Stat(dir); err == nil {
		return "partial"
	}
	return "new"
}

func main() {
	device.UseHugePages() // before anything else: glibc reads its tunables only at start-up
	// A kill (SIGTERM), like ^C, stops the sweep at the next step; the same command resumes it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := exitCode(run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode is the process status of run's error, said on stderr: 0 on success and when help was asked for (-h),
// 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "ablations: interrupted; run the same command again to resume")
	default:
		fmt.Fprintf(stderr, "ablations: %v\n", err)
	}
	return 1
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
