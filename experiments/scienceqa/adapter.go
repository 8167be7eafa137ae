package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/adapterlab/llama-adapter/adapter"
)

// runAdapter is the `adapter` subcommand: moving adapters between the toolkit and other tools' files.
//
//	go run ./experiments/scienceqa adapter convert -to toolkit|official|peft|litgpt [-gate G] [-heads H] [-base-model NAME] IN OUT
//	go run ./experiments/scienceqa adapter info PATH
func runAdapter(args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: scienceqa adapter convert -to FORMAT [-gate G] [-heads H] [-base-model NAME] IN OUT")
		fmt.Fprintln(w, "       scienceqa adapter info PATH")
		fmt.Fprintln(w, "formats: toolkit (.safetensors, any gate formula, visual projection), official (v1 release .pth, head-tanh),")
		fmt.Fprintln(w, "         peft (AdaptionPrompt folder, layer), litgpt (lit_model.pth.adapter, head); the input's is detected")
	}
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("missing action (convert or info)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	case "convert":
		return runConvert(args[1:], stdout, stderr)
	case "info":
		return runAdapterInfo(args[1:], stdout, stderr)
	}
	usage(stderr)
	return fmt.Errorf("unknown action %q (want convert or info)", args[0])
}

// parseInterspersed parses flags that may come before, between or after the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runConvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("adapter convert", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: scienceqa adapter convert -to FORMAT [flags] IN OUT

Converts an adapter between the toolkit's .safetensors (or a run folder), the official LLaMA-Adapter v1 .pth, a
peft AdaptionPrompt folder and litgpt's lit_model.pth.adapter, where the conversion is exact: the gates move to
the formula the output stores (official head-tanh, peft layer, litgpt head; toolkit: -gate, default the input's).
Anything that cannot be exact (unequal heads into peft's one gate per layer, a gate |g| ≥ 1 into head-tanh, a
visual projection into a format without one) is refused with the reason. No model is needed: the layer count,
width and head count come from the file (peft's files lack the head count: give -heads where it is needed).

flags:`)
		fs.PrintDefaults()
	}
	to := fs.String("to", "", "output format: toolkit, official, peft or litgpt (required)")
	gate := fs.String("gate", "", "gate formula of a toolkit output: head-tanh, head or layer (default: the input's)")
	heads := fs.Int("heads", 0, "the model's head count, for a peft input going to a per-head formula or to the toolkit's file")
	base := fs.String("base-model", "", "peft output: base_model_name_or_path (default null)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *to == "" || len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("want -to FORMAT and two paths IN OUT (got -to %q and %d paths)", *to, len(pos))
	}
	format, err := adapter.ParseFormat(*to)
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	opts := adapter.ConvertOptions{Heads: *heads, BaseModel: *base}
	if *gate != "" {
		if opts.Gate, err = adapter.ParseGateMode(*gate); err != nil {
			return fmt.Errorf("-gate: %w", err)
		}
	}
	from, err := adapter.Convert(pos[0], pos[1], format, opts)
	if err != nil {
		return err
	}
	w, _, err := adapter.Read(pos[1])
	if err != nil {
		return fmt.Errorf("reading back %s: %w", pos[1], err)
	}
	fmt.Fprintf(stdout, "%s (%s) → %s (%s): %s\n", pos[0], from, pos[1], format, describe(w))
	return nil
}

func runAdapterInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("adapter info", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: scienceqa adapter info PATH\n\nPrints an adapter file's format, shape and gate values (any format; see adapter convert -h).")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("want one path, got %d", len(pos))
	}
	w, f, err := adapter.Read(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, %s\n", pos[0], f, describe(w))
	per := len(w.Gates) / w.Config.Layers
	for j := 0; j < w.Config.Layers; j++ {
		var vals []string
		for _, g := range w.Gates[j*per : (j+1)*per] {
			vals = append(vals, fmt.Sprintf("%.4g", g))
		}
		fmt.Fprintf(stdout, "  layer %d gates as stored: %s\n", w.NumLayers-w.Config.Layers+j, strings.Join(vals, " "))
	}
	return nil
}

func describe(w *adapter.Weights) string {
	h := "unrecorded"
	if w.NumHeads > 0 {
		h = fmt.Sprint(w.NumHeads)
	}
	s := fmt.Sprintf("%s gates, L=%d of N=%d layers, K=%d, C=%d, heads %s", w.Config.Gate, w.Config.Layers, w.NumLayers, w.Config.PromptLen, w.Dim, h)
	if w.Config.Visual != nil {
		s += fmt.Sprintf(", visual projection (%d tensors)", len(w.Visual))
	}
	return s
}
