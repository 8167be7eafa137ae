// Command generate continues a prompt with a LLaMA model (HF safetensors folder, llama2.c .bin, Meta .pth, GGUF, or
// a pinned model's name such as smollm2):
//
//	go run ./experiments/generate -model PATH|NAME [-tokenizer PATH] -prompt TEXT [-chat] [-bos=true|false] [-steps 256] [-temperature 0] [-topp 0.9] [-seed 1]
//	go run ./experiments/generate -model smollm2 -tokenize TEXT   # TEXT's ids without BOS, one JSON array
//	go run ./experiments/generate -adapter RUN_FOLDER|adapter.safetensors|official.pth [-image FILE] -prompt TEXT
//
// Greedy by default (temperature 0); with a temperature it samples with nucleus (top-p) truncation and a seed.
// Like llama2.c's run.c, -steps counts every position including the prompt, generation stops at BOS or EOS, and
// tokens/s is printed at the end (to stderr, after the text). A GGUF model carries its tokenizer, so -tokenizer
// defaults to the model file. -chat wraps the prompt in the model's chat template (ChatML for SmolLM2) as one user
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
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
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

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", assets.Path("models", "stories260K", "stories260K.bin"),
		"model: HF folder, llama2.c .bin, Meta .pth, .gguf, or a pinned model's name ("+strings.Join(assets.ModelNames(), ", ")+")")
	tokPath := fs.String("tokenizer", "", "tokenizer: SentencePiece .model, llama2.c tokenizer.bin, HF tokenizer.json or .gguf (default: the model file for GGUF models, else stories260K's tok512.bin)")
	prompt := fs.String("prompt", "", "prompt text (empty: start from BOS)")
	steps := fs.Int("steps", 256, "positions in all, prompt included (as llama2.c)")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
	topP := fs.Float64("topp", 0.9, "nucleus sampling threshold (with a temperature)")
	seed := fs.Uint64("seed", 1, "sampling seed")
	dtype := device.Float32
	fs.Var(&dtype, "dtype", "weight dtype: float32 or bfloat16")
	noCache := fs.Bool("no-cache", false, "recompute the whole sequence each step instead of using the KV cache")
	stopEOS := fs.Bool("stop-eos", true, "stop at EOS as well as BOS (llama2.c's run.c stops at BOS only)")
	chat := fs.Bool("chat", false, "wrap -prompt in the model's chat template (one user turn, then the assistant's header)")
	bos := fs.String("bos", "", "prepend BOS: true or false (default: the tokenizer's add_bos_token; true for SentencePiece and llama2.c)")
	tokenizeText := fs.String("tokenize", "", "print this text's token ids (without BOS) as one JSON array and exit")
	install := fs.Bool("install", !assets.NoInstall(), "install a missing pinned model through .ci/install-model.sh (also $"+assets.EnvNoInstall+"=1 to turn off)")
	var ao adapterOptions
	ao.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v (quote the prompt: -prompt \"...\")", fs.Args())
	}
	var err error
	ao.install = *install
	if err := ao.runDefaults(fs, modelPath, tokPath, &dtype, stderr); err != nil {
		return err
	}
	if *modelPath, err = assets.EnsureModel(*modelPath, *install, stderr); err != nil {
		return err
	}
	if *tokPath == "" {
		*tokPath = assets.Path("models", "stories260K", "tok512.bin")
		if strings.EqualFold(filepath.Ext(*modelPath), ".gguf") {
			*tokPath = *modelPath
		}
	} else if *tokPath, err = assets.EnsureModel(*tokPath, *install, stderr); err != nil {
		return err
	}
	tok, err := tokenizer.Load(*tokPath)
	if err != nil {
		return err
	}
	if flagSet(fs, "tokenize") {
		ids := tok.Encode(*tokenizeText, false)
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
	addBOS, err := resolveBOS(*bos, tok)
	if err != nil {
		return err
	}
	text := *prompt
	if *chat {
		ct, ok := tok.(interface {
			ChatTemplate() (*tokenizer.ChatTemplate, error)
		})
		if !ok {
			return fmt.Errorf("-chat: tokenizer %s has no chat template", *tokPath)
		}
		tmpl, err := ct.ChatTemplate()
		if err != nil {
			return fmt.Errorf("-chat: %w", err)
		}
		text = tmpl.Apply([]tokenizer.Message{{Role: "user", Content: *prompt}}, true)
	}
	m, err := llama.Load(*modelPath, dtype.GoMLX())
	if err != nil {
		return err
	}
	if tok.VocabSize() != m.Config.VocabSize {
		return fmt.Errorf("tokenizer %s has %d tokens but model %s has a vocabulary of %d", *tokPath, tok.VocabSize(), *modelPath, m.Config.VocabSize)
	}
	b, info, err := device.NewWithInfo()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "backend: %s\n", info)
	if note := pipeline.SlowBackendNotice(info); note != "" {
		fmt.Fprintln(stderr, note)
	}
	ad, err := ao.open(m, *modelPath, b, stderr)
	if err != nil {
		return err
	}
	ids := tok.Encode(text, addBOS)
	if len(ids) == 0 {
		// An empty prompt without BOS: start from BOS anyway, as there is nothing else to condition on.
		ids = []int{tok.BOS()}
	}
	if *steps <= len(ids) {
		return fmt.Errorf("-steps %d leaves no room after a prompt of %d tokens", *steps, len(ids))
	}
	gen := m.NewGenerator(b, *steps, !*noCache)
	var extra []*tensors.Tensor
	if ad != nil {
		gen.Extension, extra = ad.extension, ad.kv
	}
	var sampler *llama.Sampler
	if *temperature > 0 {
		sampler = llama.NewSampler(*temperature, *topP, *seed)
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
		return err
	}
	start := time.Now()
	var writeErr error
	out, err := gen.Generate([][]int{ids}, *steps-len(ids)+1, sampler, func(_, prev, next int) bool {
		if next == tok.BOS() || (*stopEOS && next == tok.EOS()) {
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
	if err != nil {
		return err
	}
	if writeErr != nil {
		return writeErr
	}
	fmt.Fprintln(w)
	elapsed := time.Since(start).Seconds()
	// The text first, then the speed: stdout is buffered, stderr is not.
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "generated %d tokens in %.2fs: %.1f tokens/s (backend %s)\n", len(out[0]), elapsed, float64(len(out[0]))/elapsed, device.Config())
	return nil
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
