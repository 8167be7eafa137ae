package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMergeRunSettings: the recorded model, vision, adapter, format and seed settings replace the preset's where no
// flag was given; a given flag keeps its value and, when it contradicts the recording, is reported; data and
// evaluation settings stay the command line's.
func TestMergeRunSettings(t *testing.T) {
	rec := presetOrFatal("smollm2")
	rec.Vision.Modality, rec.Vision.CLIP, rec.Vision.Layers = Multimodal, "dinov2-s14", []int{4, 8, 12}
	rec.Adapter.Layers, rec.Adapter.PromptLen, rec.Seed, rec.Train.MaxLen = 20, 5, 7, 300
	rec.Data.EvalFold, rec.Eval.Batch = 2, 4

	flags := Stories260K() // a preset that differs in every run setting
	flags.Vision.CLIP = "random"
	flags.Model.DType = BFloat16
	merged, conflicts := MergeRunSettings(rec, flags, map[string]bool{"clip": true, "dtype": true, "eval-batch": true})

	if merged.Vision.CLIP != "random" || merged.Model.DType != BFloat16 {
		t.Errorf("given flags were not kept: clip %q, dtype %q", merged.Vision.CLIP, merged.Model.DType)
	}
	if merged.Model.Path != rec.Model.Path || merged.Model.Tokenizer != rec.Model.Tokenizer || merged.Vision.Modality != Multimodal ||
		!slices.Equal(merged.Vision.Layers, []int{4, 8, 12}) || merged.Adapter.Layers != 20 || merged.Adapter.PromptLen != 5 ||
		merged.Seed != 7 || merged.Train.MaxLen != 300 || merged.Data.Format != rec.Data.Format {
		t.Errorf("recorded settings not taken: %+v", merged)
	}
	if merged.Data.EvalFold != flags.Data.EvalFold || merged.Eval.Batch != flags.Eval.Batch || merged.Data.Dir != flags.Data.Dir {
		t.Errorf("data/evaluation settings must stay the command line's: fold %d, batch %d", merged.Data.EvalFold, merged.Eval.Batch)
	}
	want := []string{"-dtype bfloat16 overrides the run's recorded float32", "-clip random overrides the run's recorded dinov2-s14"}
	if !slices.Equal(conflicts, want) {
		t.Errorf("conflicts %q, want %q", conflicts, want)
	}
	// A given flag equal to the recording is no conflict.
	if _, c := MergeRunSettings(rec, rec, map[string]bool{"clip": true, "L": true}); len(c) != 0 {
		t.Errorf("agreeing flags reported: %q", c)
	}
	// Merging must not alias the recorded layer list.
	merged.Vision.Layers[0] = 99
	if rec.Vision.Layers[0] != 4 {
		t.Error("the merged config shares the recorded -clip-layers slice")
	}
}

// TestRunSettingFlagsExist: every setting a run folder hands on is a flag of the configuration (so "given" can
// name it).
func TestRunSettingFlagsExist(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c := presetOrFatal(DefaultPreset)
	c.Flags(fs)
	for _, name := range RunSettingFlags() {
		if fs.Lookup(name) == nil {
			t.Errorf("run setting -%s is not a flag", name)
		}
	}
}

// TestCheckRecordedModel: the recorded model digest accepts the same file and refuses another.
func TestCheckRecordedModel(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.bin")
	other := filepath.Join(dir, "other.bin")
	os.WriteFile(model, []byte("weights"), 0o644)
	os.WriteFile(other, []byte("other weights"), 0o644)
	h := sha256.Sum256([]byte("weights"))
	rec := map[string]any{"digests": map[string]string{"model": "sha256:" + hex.EncodeToString(h[:])},
		"resolved_paths": map[string]string{"model": model}}
	raw, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if !IsRunFolder(dir) || IsRunFolder(model) {
		t.Error("IsRunFolder")
	}
	if err := CheckRecordedModel(dir, model); err != nil {
		t.Errorf("the recorded model refused: %v", err)
	}
	if err := CheckRecordedModel(dir, other); err == nil || !strings.Contains(err.Error(), "was trained on model") {
		t.Errorf("another model: err = %v", err)
	}
}
