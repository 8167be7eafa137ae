package tokenizer

import (
	"errors"
	"fmt"

	"github.com/adapterlab/llama-adapter/models/gguf"
)

// LoadGGUF reads the byte-level BPE tokenizer in a GGUF file's metadata (tokenizer.ggml.model "gpt2"); the
// tensors are not read.
func LoadGGUF(path string) (*BPE, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	return FromGGUFMeta(f.Meta, path)
}

// FromGGUFMeta builds the tokenizer from GGUF metadata: tokenizer.ggml.model (must be "gpt2"), .tokens, .merges,
// .token_type (optional), .bos_token_id / .eos_token_id (optional, -1 when absent), .add_bos_token (optional),
// .pre (must be a supported pre-tokenizer: "gpt-2", "smollm", "llama-bpe") and tokenizer.chat_template (optional).
// name identifies the file in errors.
func FromGGUFMeta(m *gguf.Metadata, name string) (*BPE, error) {
	fail := func(err error) (*BPE, error) {
		return nil, fmt.Errorf("tokenizer: GGUF %s: %w", name, err)
	}
	model, err := m.String("tokenizer.ggml.model")
	if err != nil {
		return fail(err)
	}
	if model != "gpt2" {
		return fail(fmt.Errorf("tokenizer.ggml.model is %q; only byte-level BPE (\"gpt2\") is supported", model))
	}
	cfg := BPEConfig{Name: name, BOS: -1, EOS: -1}
	if cfg.Tokens, err = m.Strings("tokenizer.ggml.tokens"); err != nil {
		return fail(err)
	}
	if cfg.Merges, err = m.Strings("tokenizer.ggml.merges"); err != nil {
		return fail(err)
	}
	if cfg.Types, err = m.Int32s("tokenizer.ggml.token_type"); err != nil && !errors.Is(err, gguf.ErrNotFound) {
		return fail(err)
	}
	for key, dst := range map[string]*int{"tokenizer.ggml.bos_token_id": &cfg.BOS, "tokenizer.ggml.eos_token_id": &cfg.EOS} {
		v, err := m.Int(key)
		switch {
		case errors.Is(err, gguf.ErrNotFound):
		case err != nil:
			return fail(err)
		default:
			*dst = int(v)
		}
	}
	if cfg.AddBOS, err = m.Bool("tokenizer.ggml.add_bos_token"); err != nil && !errors.Is(err, gguf.ErrNotFound) {
		return fail(err)
	}
	if cfg.Pre, err = m.String("tokenizer.ggml.pre"); err != nil {
		return fail(fmt.Errorf("%w (llama.cpp's fallback \"default\" pre-tokenizer is not supported)", err))
	}
	if _, err := preTokenizerByName(cfg.Pre); err != nil || cfg.Pre == "" {
		return fail(fmt.Errorf("tokenizer.ggml.pre: %v", err))
	}
	cfg.IgnoreMerges = cfg.Pre == "llama-bpe" // as llama.cpp does for Llama 3
	if cfg.ChatTemplate, err = m.String("tokenizer.chat_template"); err != nil && !errors.Is(err, gguf.ErrNotFound) {
		return fail(err)
	}
	return NewBPE(cfg)
}
