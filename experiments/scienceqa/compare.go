package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/results"
)

// runCompare is the `compare` subcommand: the paired comparison of two runs on the same problems, or of one run
// with the pretrained model's zero-shot choices (results/zero-shot), protocol by protocol: each accuracy with its
// Wilson 95 % interval, the difference with its paired bootstrap interval and exact McNemar p, and the verdict.
//
//	go run ./experiments/scienceqa compare [-protocol cloze,cloze-norm] [-subset IMG] RUN_DIR [RUN_DIR_B]
func runCompare(args []string, stdout, stderr io.Writer) error {
	o, err := parseCompareFlags(args, stderr)
	if err != nil {
		return err
	}
	r := pipeline.OutcomeReader{ZeroShotDir: o.zeroShot}
	a, err := r.Read(o.runs[0])
	if err != nil {
		return err
	}
	bName := "zero-shot"
	b := a.ZeroShot
	if len(o.runs) == 2 {
		ob, err := r.Read(o.runs[1])
		if err != nil {
			return err
		}
		b, bName = ob.Correct, o.runs[1]
	} else if b == nil {
		return fmt.Errorf("%s: no zero-shot record with per-problem choices matches the run (fill one: scienceqa eval with the run's settings and no -adapter)", o.runs[0])
	}
	var ps []string
	if o.protocols != "" {
		ps = strings.Split(o.protocols, ",")
	} else {
		for p := range a.Correct {
			if b[p] != nil {
				ps = append(ps, p)
			}
		}
		sort.Strings(ps)
	}
	fmt.Fprintf(stdout, "A: %s\nB: %s\n", o.runs[0], bName)
	if a.ZeroShotFile != "" && len(o.runs) == 1 {
		fmt.Fprintf(stdout, "zero-shot choices: %s\n", a.ZeroShotFile)
	}
	for _, p := range ps {
		if err := o.comparePair(stdout, p, a, b); err != nil {
			return err
		}
	}
	return nil
}

// compareOptions are the `compare` subcommand's flags and its one or two run folders.
type compareOptions struct {
	protocols, subset, zeroShot string
	resamples                   int
	runs                        []string
}

// parseCompareFlags reads the `compare` command line.
func parseCompareFlags(args []string, stderr io.Writer) (*compareOptions, error) {
	fs := newFlagSet("compare", stderr)
	o := &compareOptions{}
	fs.StringVar(&o.protocols, "protocol", "", "comma-separated protocols (letter, cloze, cloze-norm); default: every one both sides have")
	fs.StringVar(&o.subset, "subset", "", "IMG: only the problems with an image context")
	fs.StringVar(&o.zeroShot, "zero-shot-cache", "", "zero-shot records to search (default: results/zero-shot in the repository)")
	fs.IntVar(&o.resamples, "resamples", results.DefaultResamples, "bootstrap resamples")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scienceqa compare [flags] RUN_DIR [RUN_DIR_B]   (one run: against its zero-shot baseline)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return nil, fmt.Errorf("want one or two run folders, have %d", fs.NArg())
	}
	if o.subset != "" && o.subset != "IMG" {
		return nil, fmt.Errorf("-subset %q: want IMG or nothing", o.subset)
	}
	o.runs = fs.Args()
	return o, nil
}

// comparePair prints protocol p's two accuracies (restricted to -subset) with their intervals and the paired
// difference's verdict; a is run A's outcomes, b side B's pid → correct per protocol.
func (o *compareOptions) comparePair(stdout io.Writer, p string, a *pipeline.Outcomes, b map[string]map[string]bool) error {
	ca, cb := a.Correct[p], b[p]
	if ca == nil || cb == nil {
		return fmt.Errorf("protocol %s: not scored by both", p)
	}
	if o.subset != "" {
		ca, cb = onlyImage(ca, a.Image), onlyImage(cb, a.Image)
	}
	bs := results.Bootstrap{Resamples: o.resamples}
	st, err := results.NewStratum("", ca, cb)
	if err != nil {
		return err
	}
	d, err := results.PairedDifference([]results.Stratum{st}, bs)
	if err != nil {
		return err
	}
	accA, _ := results.AccuracyOf([]map[string]bool{ca}, bs)
	accB, _ := results.AccuracyOf([]map[string]bool{cb}, bs)
	label := p
	if o.subset != "" {
		label += " (" + o.subset + ")"
	}
	// A trained run is claimed to beat the pretrained model; two runs have no claimed order.
	expect := 1
	if len(o.runs) == 2 {
		expect = 0
	}
	fmt.Fprintf(stdout, "%s: A %.2f %% [%.2f, %.2f] (%d/%d), B %.2f %% [%.2f, %.2f] (%d/%d) (Wilson 95 %%)\n", label,
		accA.Percent, accA.CI.Lo, accA.CI.Hi, accA.Correct, accA.Total, accB.Percent, accB.CI.Lo, accB.CI.Hi, accB.Correct, accB.Total)
	fmt.Fprintf(stdout, "  %s\n", d.Sentence("A − B", expect))
	return nil
}

// onlyImage restricts pid → correct to the problems with an image context.
func onlyImage(c, image map[string]bool) map[string]bool {
	out := map[string]bool{}
	for pid, ok := range c {
		if image[pid] {
			out[pid] = ok
		}
	}
	return out
}
