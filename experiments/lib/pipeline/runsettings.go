package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/adapterlab/llama-adapter/results"
)

// A run folder given where an adapter is expected (eval -adapter, ask -run, generate -adapter) brings the settings
// its config.json recorded: the model, the vision tower and its layers, the adapter's shape and the prompt format.
// Without them a multimodal run evaluated under the default preset would look for a vision tower the preset does
// not name. Flags given on the command line still win; a flag that contradicts the recording is reported.

// runSetting is one setting a run folder hands on: its flag name, copying it between configs, and its printed form
// (equality is equality of that form).
type runSetting struct {
	flag string
	copy func(dst, src *Config)
	show func(c *Config) string
}

func runSettingOf[T any](flag string, field func(c *Config) *T) runSetting {
	return runSetting{flag: flag,
		copy: func(dst, src *Config) { *field(dst) = *field(src) },
		show: func(c *Config) string { return fmt.Sprint(*field(c)) }}
}

// runSettings are the settings a run folder hands on, by flag name. The seed is among them: it seeds the
// fallback's random answers and a random-weight vision tower, so the run's evaluation is reproduced.
var runSettings = []runSetting{
	runSettingOf("model", func(c *Config) *string { return &c.Model.Path }),
	runSettingOf("tokenizer", func(c *Config) *string { return &c.Model.Tokenizer }),
	runSettingOf("dtype", func(c *Config) *DType { return &c.Model.DType }),
	runSettingOf("modality", func(c *Config) *Modality { return &c.Vision.Modality }),
	runSettingOf("clip", func(c *Config) *string { return &c.Vision.CLIP }),
	{flag: "clip-layers",
		copy: func(dst, src *Config) { dst.Vision.Layers = slices.Clone(src.Vision.Layers) },
		show: func(c *Config) string { return formatInts(c.Vision.Layers) }},
	runSettingOf("visual-hidden", func(c *Config) *int { return &c.Vision.Projection.Hidden }),
	runSettingOf("visual-depth", func(c *Config) *int { return &c.Vision.Projection.Depth }),
	runSettingOf("L", func(c *Config) *int { return &c.Adapter.Layers }),
	runSettingOf("K", func(c *Config) *int { return &c.Adapter.PromptLen }),
	runSettingOf("gate", func(c *Config) *string { return (*string)(&c.Adapter.Gate) }),
	runSettingOf("init", func(c *Config) *string { return (*string)(&c.Adapter.Init) }),
	runSettingOf("prompt-std", func(c *Config) *float64 { return &c.Adapter.PromptStd }),
	runSettingOf("gate-std", func(c *Config) *float64 { return &c.Adapter.GateStd }),
	runSettingOf("seed", func(c *Config) *uint64 { return &c.Seed }),
	runSettingOf("format", func(c *Config) *string { return (*string)(&c.Data.Format) }),
	runSettingOf("captions", func(c *Config) *bool { return &c.Data.Captions }),
	runSettingOf("max-len", func(c *Config) *int { return &c.Train.MaxLen }),
}

// RunSettingFlags lists the flags whose settings a run folder hands on.
func RunSettingFlags() []string {
	var names []string
	for _, s := range runSettings {
		names = append(names, s.flag)
	}
	return names
}

// MergeRunSettings returns flags (the configuration the command line built: a preset and its flags) with the run
// folder's recorded settings (RunSettingFlags: model, vision, adapter, prompt format, seed) wherever the flag was
// not given; given names the flags given explicitly, which keep their value. Each given flag whose value differs
// from the recording is described in conflicts ("-clip random overrides the run's recorded dinov2-s14").
// Everything else (data, evaluation, where to run) is flags'.
func MergeRunSettings(recorded, flags Config, given map[string]bool) (merged Config, conflicts []string) {
	merged = flags
	for _, s := range runSettings {
		if !given[s.flag] {
			s.copy(&merged, &recorded)
			continue
		}
		if was, now := s.show(&recorded), s.show(&flags); was != now {
			conflicts = append(conflicts, fmt.Sprintf("-%s %s overrides the run's recorded %s", s.flag, orNone(now), orNone(was)))
		}
	}
	return merged, conflicts
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// IsRunFolder reports whether path is a run folder (a folder with config.json).
func IsRunFolder(path string) bool {
	st, err := os.Stat(filepath.Join(path, ConfigFile))
	return err == nil && st.Mode().IsRegular()
}

// ReadRunInputs reads what a run folder's config.json recorded of its input files: their resolved paths and
// content digests by input name ("model", "tokenizer", "clip", ...).
func ReadRunInputs(dir string) (paths, digests map[string]string, err error) {
	var r resolved
	if err := results.ReadJSON(filepath.Join(dir, ConfigFile), &r); err != nil {
		return nil, nil, err
	}
	return r.Paths, r.Digests, nil
}

// CheckRecordedModel checks that modelPath (a file) is the model the run folder dir was trained on, by the
// content digest its config.json recorded. A run that recorded no model digest (a model folder) passes.
func CheckRecordedModel(dir, modelPath string) error {
	paths, digests, err := ReadRunInputs(dir)
	if err != nil {
		return err
	}
	want, ok := digests["model"]
	if !ok {
		return nil
	}
	if st, err := os.Stat(modelPath); err != nil || st.IsDir() {
		return nil // only files are digested (as the run recorded them)
	}
	got, err := fileDigest(modelPath)
	if err != nil {
		return fmt.Errorf("hashing %s: %w", modelPath, err)
	}
	if got != want {
		return fmt.Errorf("run folder %s was trained on model %s (%s); the model given, %s, is another (%s): give the run's model (-model %s) or another adapter",
			dir, paths["model"], want, modelPath, got, paths["model"])
	}
	return nil
}
