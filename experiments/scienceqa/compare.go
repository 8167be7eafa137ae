package main

import (
	"flag"
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
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocols := fs.String("protocol", "", "comma-separated protocols (letter, cloze, cloze-norm); default: every one both sides have")
	subset := fs.String("subset", "", "IMG: only the problems with an image context")
	zeroShot := fs.String("zero-shot-cache", "", "zero-shot records to search (default: results/zero-shot in the repository)")
	resamples := fs.Int("resamples", results.DefaultResamples, "bootstrap resamples")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scienceqa compare [flags] RUN_DIR [RUN_DIR_B]   (one run: against its zero-shot baseline)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return fmt.Errorf("want one or two run folders, have %d", fs.NArg())
	}
	if *subset != "" && *subset != "IMG" {
		return fmt.Errorf("-subset %q: want IMG or nothing", *subset)
	}
	r := pipeline.OutcomeReader{ZeroShotDir: *zeroShot}
	a, err := r.Read(fs.Arg(0))
	if err != nil {
		return err
	}
	bName := "zero-shot"
	b := a.ZeroShot
	if fs.NArg() == 2 {
		o, err := r.Read(fs.Arg(1))
		if err != nil {
			return err
		}
		b, bName = o.Correct, fs.Arg(1)
	} else if b == nil {
		return fmt.Errorf("%s: no zero-shot record with per-problem choices matches the run (fill one: scienceqa eval with the run's settings and no -adapter)", fs.Arg(0))
	}
	var ps []string
	if *protocols != "" {
		ps = strings.Split(*protocols, ",")
	} else {
		for p := range a.Correct {
			if b[p] != nil {
				ps = append(ps, p)
			}
		}
		sort.Strings(ps)
	}
	sub := func(c map[string]bool) map[string]bool {
		if *subset == "" {
			return c
		}
		out := map[string]bool{}
		for pid, ok := range c {
			if a.Image[pid] {
				out[pid] = ok
			}
		}
		return out
	}
	fmt.Fprintf(stdout, "A: %s\nB: %s\n", fs.Arg(0), bName)
	if a.ZeroShotFile != "" && fs.NArg() == 1 {
		fmt.Fprintf(stdout, "zero-shot choices: %s\n", a.ZeroShotFile)
	}
	// A trained run is claimed to beat the pretrained model; two runs have no claimed order.
	expect := 1
	if fs.NArg() == 2 {
		expect = 0
	}
	bs := results.Bootstrap{Resamples: *resamples}
	for _, p := range ps {
		ca, cb := a.Correct[p], b[p]
		if ca == nil || cb == nil {
			return fmt.Errorf("protocol %s: not scored by both", p)
		}
		ca, cb = sub(ca), sub(cb)
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
		if *subset != "" {
			label += " (" + *subset + ")"
		}
		fmt.Fprintf(stdout, "%s: A %.2f %% [%.2f, %.2f] (%d/%d), B %.2f %% [%.2f, %.2f] (%d/%d) (Wilson 95 %%)\n", label,
			accA.Percent, accA.CI.Lo, accA.CI.Hi, accA.Correct, accA.Total, accB.Percent, accB.CI.Lo, accB.CI.Hi, accB.Correct, accB.Total)
		fmt.Fprintf(stdout, "  %s\n", d.Sentence("A − B", expect))
	}
	return nil
}
