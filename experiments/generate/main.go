// Command generate continues a prompt with a LLaMA model (HF safetensors folder, llama2.c .bin or Meta .pth):
//
//	go run ./experiments/generate -model PATH -tokenizer PATH -prompt TEXT [-steps 256] [-temperature 0] [-topp 0.9] [-seed 1]
//
// Greedy by default (temperature 0); with a temperature it samples with nucleus (top-p) truncation and a seed.
// Like llama2.c's run.c, -steps counts every position including the prompt, generation stops at BOS or EOS, and
// tokens/s is printed at the end (to stderr).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/gomlx/compute/dtypes"
)

func main() {
	device.UseHugePages() // before anything else: glibc reads its tunables only at start-up
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", assets.Path("models", "stories260K", "stories260K.bin"), "model: HF folder, llama2.c .bin or Meta .pth")
	tokPath := fs.String("tokenizer", assets.Path("models", "stories260K", "tok512.bin"), "tokenizer: SentencePiece .model or llama2.c tokenizer.bin")
	prompt := fs.String("prompt", "", "prompt text (empty: start from BOS)")
	steps := fs.Int("steps", 256, "positions in all, prompt included (as llama2.c)")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
	topP := fs.Float64("topp", 0.9, "nucleus sampling threshold (with a temperature)")
	seed := fs.Uint64("seed", 1, "sampling seed")
	dtypeName := fs.String("dtype", "float32", "weight dtype: float32 or bfloat16")
	noCache := fs.Bool("no-cache", false, "recompute the whole sequence each step instead of using the KV cache")
	stopEOS := fs.Bool("stop-eos", true, "stop at EOS as well as BOS (llama2.c's run.c stops at BOS only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dtype := dtypes.Float32
	if *dtypeName == "bfloat16" {
		dtype = dtypes.BFloat16
	} else if *dtypeName != "float32" {
		return fmt.Errorf("unknown -dtype %q", *dtypeName)
	}
	tok, err := tokenizer.Load(*tokPath)
	if err != nil {
		return err
	}
	m, err := llama.Load(*modelPath, dtype)
	if err != nil {
		return err
	}
	if tok.VocabSize() != m.Config.VocabSize {
		return fmt.Errorf("tokenizer %s has %d tokens but model %s has a vocabulary of %d", *tokPath, tok.VocabSize(), *modelPath, m.Config.VocabSize)
	}
	b, err := device.New()
	if err != nil {
		return err
	}
	ids := tok.Encode(*prompt, true)
	if *steps <= len(ids) {
		return fmt.Errorf("-steps %d leaves no room after a prompt of %d tokens", *steps, len(ids))
	}
	gen := m.NewGenerator(b, *steps, !*noCache)
	var sampler *llama.Sampler
	if *temperature > 0 {
		sampler = llama.NewSampler(*temperature, *topP, *seed)
	}
	// Print the prompt's pieces as llama2.c does (every token after BOS, filtered like its safe_printf), then the
	// generated ones as they come.
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for i := 1; i < len(ids); i++ {
		fmt.Fprint(w, tokenizer.SafePiece(tok.DecodePiece(ids[i-1], ids[i])))
	}
	start := time.Now()
	out, err := gen.Generate([][]int{ids}, *steps-len(ids)+1, sampler, func(_, prev, next int) bool {
		if next == tok.BOS() || (*stopEOS && next == tok.EOS()) {
			return false
		}
		fmt.Fprint(w, tokenizer.SafePiece(tok.DecodePiece(prev, next)))
		return true
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	elapsed := time.Since(start).Seconds()
	fmt.Fprintf(stderr, "generated %d tokens in %.2fs: %.1f tokens/s (backend %s)\n", len(out[0]), elapsed, float64(len(out[0]))/elapsed, device.Config())
	return nil
}
