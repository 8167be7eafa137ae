package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// TestConfigFileAndOverrides: -config FILE reads a user's file over its base preset, flags override single
// settings, and -preset with -config is refused.
func TestConfigFileAndOverrides(t *testing.T) {
	assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	file := filepath.Join(t.TempDir(), "mine.json")
	if err := os.WriteFile(file, []byte(`{"base": "stories260K", "config": {"adapter": {"prompt_len": 4}, "train": {"epochs": 3}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig("train", []string{"-config", file, "--epochs=5", "-seed", "2"}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Adapter.PromptLen != 4 || cfg.Train.Epochs != 5 || cfg.Seed != 2 || cfg.Adapter.Layers != 5 {
		t.Errorf("config file + flags: K=%d epochs %g seed %d L=%d", cfg.Adapter.PromptLen, cfg.Train.Epochs, cfg.Seed, cfg.Adapter.Layers)
	}
	cfg, err = parseConfig("train", []string{"-preset=stories260K"}, io.Discard, nil)
	if err != nil || cfg.Adapter.Layers != 5 {
		t.Errorf("-preset=stories260K: %v", err)
	}
	if _, err := parseConfig("train", []string{"-preset", "paper", "-config", file}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "give one") {
		t.Errorf("-preset with -config: %v", err)
	}
}
