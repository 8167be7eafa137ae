// Command generate continues a prompt with a LLaMA model (HF safetensors folder, llama2.c .bin, Meta .pth, GGUF, or
// a pinned model's name such as smollm2):
//
//	go run ./experiments/generate -model PATH|NAME [-tokenizer PATH] -prompt TEXT [-chat] [-bos=true|false] [-steps 256] [-temperature 0] [-topp 0.9] [-seed 1]
//	go run ./experiments/generate -model smollm2 -tokenize TEXT   # TEXT's ids without BOS, one JSON array
//	go run ./experiments/generate -adapter RUN_FOLDER|adapter.safetensors|official.pth [-image FILE] -prompt TEXT
//
// Greedy by default (temperature 0); with a temperature it samples with nucleus (top-p) truncation and a seed.
// Like llama2.c's run.c, -steps counts every position including the prompt, generation stops at BOS or EOS, and
// tokens/s is printed at the end (to stderr, after the text; its time includes compiling the step graph), followed
// by a "profile:" line splitting it into compile (seconds, executables built), execute (seconds, calls) and host
// time, as a run's phases in summary.json. A GGUF model carries its tokenizer, so -tokenizer defaults to the model
// file. -chat wraps the prompt in the model's chat template (ChatML for SmolLM2) as one user
// turn followed by the assistant's header. Whether BOS is prepended defaults to the model's own add_bos_token
// (SmolLM2: false; SentencePiece and llama2.c models: true). Tokens are written to stdout as they are generated.
//
// -adapter continues the prompt with a trained adapter (adapter.go in this folder): a run folder (its recorded
// model, tokenizer and vision tower become the defaults; a model other than the one it recorded is refused), the
// toolkit's adapter.safetensors or the official LLaMA-Adapter v1 .pth. Its prompts' keys and values are computed once
// per generation and kept beside the KV cache. -image FILE gives a multimodal adapter its image (features from the
// run's vision tower, layers and preprocessing); without it a multimodal adapter sees zero features, as the
// evaluation does for problems without an image.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/adapterlab/llama-adapter/results"
	"github.com/gomlx/gomlx/core/tensors"
)

func main() {
	device.UseHugePages() // before anything else: glibc reads its tunables only at start-up
	os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitCode is the process status of run's error: 0 on success and when help was asked for (-h), 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "generate:", err)
	return 1
}

// options are generate's command-line settings.
type options struct {
	fs                 *flag.FlagSet
	modelPath, tokPath string
	prompt             string
	steps              int
	temperature, topP  float64
	seed               uint64
	dtype              device.DType
	noCache, stopEOS   bool
	chat               bool
	bos                string
	tokenizeText       string
	install            bool
	adapter            adapterOptions
}

func run(args []string, stdout, stderr io.Writer) error {
	_, err := generate(args, stdout, stderr)
	return err
}

// generate is run, returning the generation phase's profile (nil when nothing was generated: -tokenize, -h, an
// error before generation).
func generate(args []string, stdout, stderr io.Writer) (*results.PhaseProfile, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	if err := o.resolvePaths(stderr); err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(o.tokPath)
	if err != nil {
		return nil, err
	}
	if flagSet(o.fs, "tokenize") {
		return nil, printTokenIDs(stdout, tok, o.tokenizeText)
	}
	addBOS, err := resolveBOS(o.bos, tok)
	if err != nil {
		return nil, err
	}
	text, err := o.promptText(tok)
	if err != nil {
		return nil, err
	}
	m, err := llama.Load(o.modelPath, o.dtype.GoMLX())
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("tokenizer %s has %d tokens but model %s has a vocabulary of %d", o.tokPath, tok.VocabSize(), o.modelPath, m.Config.VocabSize)
	}
	b, info, err := device.NewWithInfo()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "backend: %s\n", info)
	if note := pipeline.SlowBackendNotice(info); note != "" {
		fmt.Fprintln(stderr, note)
	}
	ad, err := o.adapter.open(m, o.modelPath, b, stderr)
	if err != nil {
		return nil, err
	}
	ids := tok.Encode(text, addBOS)
	if len(ids) == 0 {
		// An empty prompt without BOS: start from BOS anyway, as there is nothing else to condition on.
		ids = []int{tok.BOS()}
	}
	if o.steps <= len(ids) {
		return nil, fmt.Errorf("-steps %d leaves no room after a prompt of %d tokens", o.steps, len(ids))
	}
	gen := m.NewGenerator(b, o.steps, !o.noCache)
	gen.Counter = &device.ExecCounter{}
	var extra []*tensors.Tensor
	if ad != nil {
		gen.Extension, extra = ad.extension, ad.kv
	}
	return o.stream(gen, tok, ids, extra, stdout, stderr)
}

// parseFlags reads the command line; -h comes back as flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{fs: fs, dtype: device.Float32}
	fs.StringVar(&o.modelPath, "model", assets.Path("models", "stories260K", "stories260K.bin"),
		"model: HF folder, llama2.c .bin, Meta .pth, .gguf, or a pinned model's name ("+strings.Join(assets.ModelNames(), ", ")+")")
	fs.StringVar(&o.tokPath, "tokenizer", "", "tokenizer: SentencePiece .model, llama2.c tokenizer.bin, HF tokenizer.json or .gguf (default: the model file for GGUF models, else stories260K's tok512.bin)")
	fs.StringVar(&o.prompt, "prompt", "", "prompt text (empty: start from BOS)")
	fs.IntVar(&o.steps, "steps", 256, "positions in all, prompt included (as llama2.c)")
	fs.Float64Var(&o.temperature, "temperature", 0, "sampling temperature; 0 is greedy")
	fs.Float64Var(&o.topP, "topp", 0.9, "nucleus sampling threshold (with a temperature)")
	fs.Uint64Var(&o.seed, "seed", 1, "sampling seed")
	fs.Var(&o.dtype, "dtype", "weight dtype: float32 or bfloat16")
	fs.BoolVar(&o.noCache, "no-cache", false, "recompute the whole sequence each step instead of using the KV cache")
	fs.BoolVar(&o.stopEOS, "stop-eos", true, "stop at EOS as well as BOS (llama2.c's run.c stops at BOS only)")
	fs.BoolVar(&o.chat, "chat", false, "wrap -prompt in the model's chat template (one user turn, then the assistant's header)")
	fs.StringVar(&o.bos, "bos", "", "prepend BOS: true or false (default: the tokenizer's add_bos_token; true for SentencePiece and llama2.c)")
	fs.StringVar(&o.tokenizeText, "tokenize", "", "print this text's token ids (without BOS) as one JSON array and exit")
	fs.BoolVar(&o.install, "install", !assets.NoInstall(), "install a missing pinned model through .ci/install-model.sh (also $"+assets.EnvNoInstall+"=1 to turn off)")
	o.adapter.flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %v (quote the prompt: -prompt \"...\")", fs.Args())
	}
	return o, nil
}

// resolvePaths applies an adapter run's defaults, installs a missing pinned model and picks the default tokenizer
// (the model file itself for GGUF, else stories260K's).
func (o *options) resolvePaths(stderr io.Writer) error {
	var err error
	o.adapter.install = o.install
	if err := o.adapter.runDefaults(o.fs, &o.modelPath, &o.tokPath, &o.dtype, stderr); err != nil {
		return err
	}
	if o.modelPath, err = assets.EnsureModel(o.modelPath, o.install, stderr); err != nil {
		return err
	}
	if o.tokPath == "" {
		o.tokPath = assets.Path("models", "stories260K", "tok512.bin")
		if strings.EqualFold(filepath.Ext(o.modelPath), ".gguf") {
			o.tokPath = o.modelPath
		}
	} else if o.tokPath, err = assets.EnsureModel(o.tokPath, o.install, stderr); err != nil {
		return err
	}
	return nil
}

// printTokenIDs writes text's token ids (without BOS) as one JSON array: -tokenize.
func printTokenIDs(stdout io.Writer, tok tokenizer.Tokenizer, text string) error {
	ids := tok.Encode(text, false)
	if ids == nil {
		ids = []int{}
	}
	out, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(out))
	return err
}

// promptText is -prompt, wrapped in the tokenizer's chat template under -chat.
func (o *options) promptText(tok tokenizer.Tokenizer) (string, error) {
	if !o.chat {
		return o.prompt, nil
	}
	ct, ok := tok.(interface {
		ChatTemplate() (*tokenizer.ChatTemplate, error)
	})
	if !ok {
		return "", fmt.Errorf("-chat: tokenizer %s has no chat template", o.tokPath)
	}
	tmpl, err := ct.ChatTemplate()
	if err != nil {
		return "", fmt.Errorf("-chat: %w", err)
	}
	return tmpl.Apply([]tokenizer.Message{{Role: "user", Content: o.prompt}}, true), nil
}

// stream prints the prompt's pieces, then generates up to -steps positions, writing each token as it comes, and
// finally the speed and the generation's profile (gen.Counter's compiles and executions, as a run's summary.json
// records its phases) to stderr.
func (o *options) stream(gen *llama.Generator, tok tokenizer.Tokenizer, ids []int, extra []*tensors.Tensor, stdout, stderr io.Writer) (*results.PhaseProfile, error) {
	var sampler *llama.Sampler
	if o.temperature > 0 {
		sampler = llama.NewSampler(o.temperature, o.topP, o.seed)
	}
	// Print the prompt's pieces as llama2.c does (every token after the first, filtered like its safe_printf), then
	// the generated ones as they come.
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if ids[0] != tok.BOS() {
		fmt.Fprint(w, tokenizer.SafePiece(tok.DecodePiece(-1, ids[0])))
	}
	for i := 1; i < len(ids); i++ {
		fmt.Fprint(w, tokenizer.SafePiece(tok.DecodePiece(ids[i-1], ids[i])))
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	phase, before := results.StartPhase("generate"), gen.Counter.Snapshot()
	start := time.Now()
	var writeErr error
	out, err := gen.Generate([][]int{ids}, o.steps-len(ids)+1, sampler, func(_, prev, next int) bool {
		if next == tok.BOS() || (o.stopEOS && next == tok.EOS()) {
			return false
		}
		// Each token as it comes (flushed), so a slow model streams instead of printing at the end.
		fmt.Fprint(w, tokenizer.SafePiece(tok.DecodePiece(prev, next)))
		if err := w.Flush(); err != nil {
			writeErr = err
			return false
		}
		return true
	}, extra...)
	prof := train.Stats{ExecStats: gen.Counter.Snapshot().Sub(before)}.EndPhase(phase)
	if err != nil {
		return nil, err
	}
	if writeErr != nil {
		return nil, writeErr
	}
	fmt.Fprintln(w)
	elapsed := time.Since(start).Seconds()
	// The text first, then the speed: stdout is buffered, stderr is not.
	if err := w.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "generated %d tokens in %.2fs: %.1f tokens/s (backend %s)\n", len(out[0]), elapsed, float64(len(out[0]))/elapsed, device.Config())
	fmt.Fprintln(stderr, "profile:", prof)
	return &prof, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// resolveBOS decides whether to prepend BOS: the -bos flag if given, else the tokenizer's own add_bos_token where it
// has one (byte-level BPE from GGUF or tokenizer.json), else true (SentencePiece and llama2.c models always start
// at BOS).
func resolveBOS(flagValue string, tok tokenizer.Tokenizer) (bool, error) {
	switch flagValue {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		if b, ok := tok.(interface{ AddsBOS() bool }); ok {
			return b.AddsBOS(), nil
		}
		return true, nil
	}
	return false, fmt.Errorf("-bos must be true or false, not %q", flagValue)
}
