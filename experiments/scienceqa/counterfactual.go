package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/results"
)

// runCounterfactual is the `counterfactual` subcommand: does a multimodal run's adapter use the image? It
// evaluates the run again on the IMG problems of its evaluation set with true, shuffled (another IMG problem's)
// and zero image features, by the run's protocols, and prints and saves (counterfactual.json, counterfactual.md in
// the run folder) each accuracy with its Wilson interval, the paired differences true − shuffled and true − zero
// with bootstrap intervals and exact McNemar p, and the reading.
//
//	go run ./experiments/scienceqa counterfactual -run RUN_DIR [-eval-limit N] [-feature-cache DIR] [-protocol letter,cloze]
func runCounterfactual(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("counterfactual", stderr)
	run := fs.String("run", "", "a complete multimodal run folder (required)")
	evalLimit := fs.Int("eval-limit", 0, "evaluate only the first N IMG problems of the run's evaluation set (0: all)")
	cache := fs.String("feature-cache", "", "image-feature cache folder (default: <runs>/../features, as the run)")
	protocols := fs.String("protocol", "", "comma-separated protocols (default: the run's -eval protocols, primary first)")
	backend := fs.String("backend", "", "GoMLX backend (default: resolved as for runs)")
	seed := fs.Uint64("shuffle-seed", pipeline.DefaultShuffleSeed, "seed of the fixed image permutation among IMG problems")
	resamples := fs.Int("resamples", results.DefaultResamples, "bootstrap resamples")
	wait := fs.Bool("wait", false, "wait for another process working in the run folder instead of refusing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scienceqa counterfactual -run RUN_DIR [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *run == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("want -run RUN_DIR and no arguments (have %q)", fs.Args())
	}
	if *evalLimit < 0 || *resamples < 1 {
		return fmt.Errorf("-eval-limit %d, -resamples %d: want ≥ 0 and ≥ 1", *evalLimit, *resamples)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := pipeline.Counterfactual(ctx, *run, pipeline.CounterfactualOptions{FeatureCache: *cache, Backend: *backend,
		EvalLimit: *evalLimit, Protocols: *protocols, ShuffleSeed: *seed, Bootstrap: results.Bootstrap{Resamples: *resamples},
		Wait: *wait, Install: !assets.NoInstall()}, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Markdown())
	fmt.Fprintf(stdout, "saved %s and %s\n", filepath.Join(*run, pipeline.CounterfactualFile), filepath.Join(*run, pipeline.CounterfactualTable))
	return nil
}
