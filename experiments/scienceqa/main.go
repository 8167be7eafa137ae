// Command scienceqa is the ScienceQA entry point of the toolkit:
//
//	go run ./experiments/scienceqa <subcommand> [flags]
//
// Subcommands: train, eval, score, features. Run a subcommand with -h for its flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// subcommand runs one subcommand with its arguments, writing results to stdout and usage to stderr.
type subcommand func(args []string, stdout, stderr io.Writer) error

// subcommands maps names to implementations; nil means not implemented yet.
var subcommands = map[string]subcommand{
	"train":    nil,
	"eval":     nil,
	"score":    runScore,
	"features": nil,
}

var order = []string{"train", "eval", "score", "features"}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scienceqa <subcommand> [flags]")
	fmt.Fprintln(w, "subcommands:")
	fmt.Fprintln(w, "  train     train an adapter on ScienceQA")
	fmt.Fprintln(w, "  eval      evaluate a trained adapter")
	fmt.Fprintln(w, "  score     score a predictions file (pid → choice index) per ScienceQA category")
	fmt.Fprintln(w, "  features  precompute the CLIP image features of a data set")
}

// run dispatches args and returns the process exit status: 0 success, 1 failure, 2 usage error or a
// subcommand that is not implemented yet.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
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
			return 2
		}
		fmt.Fprintf(stderr, "scienceqa %s: %v\n", name, err)
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
