// Package pipelinetest provides test fixtures for the commands built on package pipeline (generate, scienceqa):
// run folders made without training, so a command's handling of a run folder is tested in seconds.
package pipelinetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
)

// Stories260K is the stories260K preset's configuration, failing tb when the preset cannot be read.
func Stories260K(tb testing.TB) pipeline.Config {
	tb.Helper()
	c, err := pipeline.Preset("stories260K")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// RunFolder makes a run folder in a new temporary folder, as a trained run of configuration c would leave it: a new
// adapter of configuration ac for c's model (skipping the test when the model is not installed) and config.json
// with c under "config" beside the model's resolved path and digest. modelDigest replaces the model file's sha256
// digest when it is not "" (a folder recorded with another model). The adapter is ac's initialisation: c's
// adapter settings are recorded as given, not reconciled with ac.
func RunFolder(tb testing.TB, ac adapter.Config, c pipeline.Config, modelDigest string) string {
	tb.Helper()
	modelPath := assets.Require(tb, c.Model.Path)
	m, err := llama.Load(modelPath, dtypes.Float32)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	a, err := adapter.New(model.NewStore(), ac, m.Config)
	if err != nil {
		tb.Fatal(err)
	}
	if err := a.Save(filepath.Join(dir, pipeline.AdapterFile), nil); err != nil {
		tb.Fatal(err)
	}
	if modelDigest == "" {
		data, err := os.ReadFile(modelPath)
		if err != nil {
			tb.Fatal(err)
		}
		h := sha256.Sum256(data)
		modelDigest = "sha256:" + hex.EncodeToString(h[:])
	}
	rec := map[string]any{
		"config":         c,
		"digests":        map[string]string{"model": modelDigest},
		"resolved_paths": map[string]string{"model": modelPath},
	}
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, pipeline.ConfigFile), raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}
