// Command scienceqa is the ScienceQA entry point of the toolkit:
//
//	go run ./experiments/scienceqa [train] [flags]      train an adapter and evaluate it (the default run without flags)
//	go run ./experiments/scienceqa eval -adapter PATH   evaluate a saved adapter (or an official v1 .pth)
//	go run ./experiments/scienceqa score ...            score a predictions file per ScienceQA category
//	go run ./experiments/scienceqa compare RUN [RUN_B]  paired comparison of two runs, or a run and its zero-shot
//	go run ./experiments/scienceqa counterfactual -run RUN  a multimodal run with true, shuffled and zero image features
//	go run ./experiments/scienceqa features ...         precompute the CLIP feature cache of a data set
//	go run ./experiments/scienceqa adapter convert ...  convert an adapter between the toolkit, official, peft and litgpt files
//
// -h shows the subcommands and the flags of the default action (train); a subcommand's -h shows its own.
// -preset NAME selects a configuration file from experiments/presets (smollm2, the default run; stories260K, a
// one-minute check of the machinery; paper, the paper's LLaMA-7B setup); -config FILE reads one of the same form
// (a user's own, or a run folder's config.json). Flags then override single settings.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/adapterlab/llama-adapter/models/device"
)

// subcommand runs one subcommand with its arguments, writing results to stdout and usage to stderr.
type subcommand func(args []string, stdout, stderr io.Writer) error

// newFlagSet is a subcommand's flag set: a bad flag is an error returned to run (not an exit), and usage and flag
// errors go to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// subcommands maps names to implementations; nil means not implemented yet.
var subcommands = map[string]subcommand{
	"train":          runTrain,
	"eval":           runEval,
	"score":          runScore,
	"compare":        runCompare,
	"counterfactual": runCounterfactual,
	"features":       func(args []string, _, _ io.Writer) error { return runFeatures(args) },
	"adapter":        runAdapter,
	"ask":            runAsk,
}

var order = []string{"train", "eval", "score", "compare", "counterfactual", "features", "adapter", "ask"}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scienceqa [<subcommand>] [flags]   (no subcommand: train, i.e. train and evaluate)")
	fmt.Fprintln(w, "subcommands:")
	fmt.Fprintln(w, "  train     train an adapter on ScienceQA")
	fmt.Fprintln(w, "  eval      evaluate a trained adapter")
	fmt.Fprintln(w, "  score     score a predictions file (pid → choice index) per ScienceQA category")
	fmt.Fprintln(w, "  compare   paired comparison of two runs (or a run and its zero-shot baseline): intervals, exact test")
	fmt.Fprintln(w, "  counterfactual  a multimodal run's IMG accuracy with true, shuffled and zero image features: does it use the image?")
	fmt.Fprintln(w, "  features  precompute the CLIP image features of a data set")
	fmt.Fprintln(w, "  adapter   convert an adapter between the toolkit, official, peft and litgpt files (adapter -h)")
	fmt.Fprintln(w, "  ask       put one problem to a run's model with and without its adapter (prompts, scores, generation, gates)")
}

// run dispatches args and returns the process exit status: 0 success, 1 failure, 2 usage error or a
// subcommand that is not implemented yet.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		// Help asked for is the answer, not an error: the subcommands, then the default action's flags.
		usage(stdout)
		fmt.Fprintln(stdout, "\nflags of train (the default action; other subcommands: <subcommand> -h):")
		_, _ = parseConfig("train", []string{"-h"}, stdout, nil)
		return 0
	}
	// No subcommand (or flags first): the main job, train then evaluate.
	if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '-') {
		args = append([]string{"train"}, args...)
	}
	name := args[0]
	cmd, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(stderr, "scienceqa: unknown subcommand %q (want one of %v)\n", name, order)
		usage(stderr)
		return 2
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "not implemented yet: %s\n", name)
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "scienceqa %s: %v\n", name, err)
		return 1
	}
	return 0
}

func main() {
	device.UseHugePages() // before anything else: glibc reads its tunables only at start-up
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
