package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
)

// takeFlag removes -name VALUE (or -name=VALUE, with one or two dashes) from args and returns its last value
// ("" when absent) and the rest: -preset and -config are read before the other flags, whose defaults they set.
func takeFlag(args []string, name string) (string, []string) {
	val := ""
	var rest []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		switch {
		case a == args[i]: // not a flag
			rest = append(rest, args[i])
		case a == name && i+1 < len(args):
			val = args[i+1]
			i++
		case strings.HasPrefix(a, name+"="):
			val = strings.TrimPrefix(a, name+"=")
		default:
			rest = append(rest, args[i])
		}
	}
	return val, rest
}

// parseConfig builds a pipeline.Config from a preset (-preset NAME) or a configuration file (-config FILE), then
// the flags, which override single settings.
func parseConfig(name string, args []string, stderr io.Writer, extra func(fs *flag.FlagSet)) (pipeline.Config, error) {
	preset, rest := takeFlag(args, "preset")
	file, rest := takeFlag(rest, "config")
	var cfg pipeline.Config
	var err error
	switch {
	case file != "" && preset != "":
		return cfg, fmt.Errorf("-preset %s and -config %s: give one (a file can name a preset as its \"base\")", preset, file)
	case file != "":
		cfg, err = pipeline.LoadConfigFile(file)
	default:
		if preset == "" {
			preset = pipeline.DefaultPreset
		}
		cfg, err = pipeline.Preset(preset)
	}
	if err != nil {
		return cfg, err
	}
	fs := newFlagSet(name, stderr)
	fs.String("preset", preset, "configuration preset: "+strings.Join(pipeline.PresetNames(), ", ")+
		" (files in experiments/presets; smollm2: "+pipeline.PresetDescription("smollm2")+"); the other flags' defaults below are the preset's")
	fs.String("config", file, "configuration file of the presets' form ({\"base\": PRESET, \"config\": {…}}), or a run folder's config.json; flags override its settings")
	cfg.Flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(rest); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	return cfg, checkInputs(cfg, preset)
}

// checkInputs says exactly what to provide when the run's inputs are missing.
func checkInputs(cfg pipeline.Config, preset string) error {
	var missing []string
	for what, p := range map[string]string{"model (-model)": cfg.Model.Path, "tokenizer (-tokenizer)": cfg.Model.Tokenizer, "data (-data)": cfg.Data.Dir} {
		if assets.IsModelName(p) {
			continue // a pinned model: resolved (and installed if allowed) when the run opens it
		}
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, fmt.Sprintf("  %s: %s", what, p))
		}
	}
	if cfg.Data.ProblemsFile != "" {
		if _, err := os.Stat(cfg.Data.ProblemsFile); err != nil {
			missing = append(missing, fmt.Sprintf("  problems (-problems): %s", cfg.Data.ProblemsFile))
		}
	}
	if cfg.Vision.Modality == pipeline.Multimodal && cfg.Vision.CLIP != "random" && !assets.IsModelName(cfg.Vision.CLIP) {
		if _, err := os.Stat(cfg.Vision.CLIP); err != nil {
			missing = append(missing, fmt.Sprintf("  vision model (-clip): %s", cfg.Vision.CLIP))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	msg := "missing inputs:\n"
	for _, m := range missing {
		msg += m + "\n"
	}
	if preset == pipeline.DefaultPreset || preset == "default" || preset == "stories260K" {
		msg += fmt.Sprintf(`The default run reads ScienceQA from the shared assets (%s; set $%s to move them): scienceqa/{problems_test.json,pid_splits.json};
its model, SmolLM2, is installed on demand (bash .ci/install-model.sh smollm2). -preset stories260K reads models/stories260K/{stories260K.bin,tok512.bin} there.
`, assets.Dir(), assets.EnvAssets)
	}
	msg += `The paper's configuration (-preset paper) needs:
  -model DIR      LLaMA-7B: Hugging Face folder (config.json + safetensors) or Meta's folder (params.json + consolidated.00.pth)
  -tokenizer FILE LLaMA's SentencePiece tokenizer.model
  -clip DIR       Hugging Face openai/clip-vit-large-patch14 (config.json + model.safetensors)
  -data DIR       official ScienceQA (problems.json, pid_splits.json, images/) or its Hugging Face parquet files
e.g. go run ./experiments/scienceqa -preset paper -model models/llama-7b -tokenizer models/llama-7b/tokenizer.model \
       -clip models/clip-vit-large-patch14 -data data/scienceqa`
	return fmt.Errorf("%s", msg)
}

// interruptible returns a context cancelled by SIGINT/SIGTERM: the run stops at the next step and resumes from
// its last checkpoint when the same command is run again.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// runTrain trains and evaluates (the main job): go run ./experiments/scienceqa [train] [flags].
func runTrain(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("train", args, stderr, nil)
	if err != nil {
		return err
	}
	pipeline.EnsureBackend(cfg, stdout)
	ctx, cancel := interruptible()
	defer cancel()
	res, err := pipeline.Run(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run folder: %s\n", res.Dir)
	return nil
}

// runEval evaluates a saved adapter without training: go run ./experiments/scienceqa eval -adapter PATH [flags].
func runEval(args []string, stdout, stderr io.Writer) error {
	var adapterPath, outDir string
	var flags *flag.FlagSet
	cfg, err := parseConfig("eval", args, stderr, func(fs *flag.FlagSet) {
		flags = fs
		fs.StringVar(&adapterPath, "adapter", "", "adapter: a run folder, an adapter.safetensors, or an official LLaMA-Adapter v1 .pth (empty: the base model)")
		fs.StringVar(&outDir, "out", "", "folder for predictions.json, summary.json and the table (default: beside the adapter)")
	})
	if err != nil {
		return err
	}
	if cfg, err = withRunSettings(cfg, adapterPath, flags, stdout); err != nil { // a run folder brings its settings
		return err
	}
	if outDir == "" {
		if adapterPath == "" {
			return fmt.Errorf("-out is required when evaluating the base model")
		}
		outDir = adapterPath
		if st, err := os.Stat(adapterPath); err != nil || !st.IsDir() {
			outDir = filepath.Join(filepath.Dir(adapterPath), "eval")
		} else {
			outDir = filepath.Join(adapterPath, "eval")
		}
	}
	pipeline.EnsureBackend(cfg, stdout)
	ctx, cancel := interruptible()
	defer cancel()
	_, err = pipeline.Evaluate(ctx, cfg, adapterPath, outDir, stdout)
	return err
}
