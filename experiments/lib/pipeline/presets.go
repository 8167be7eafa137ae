package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/experiments/presets"
)

// A preset is a data file, experiments/presets/<name>.json (embedded in the commands, package presets):
//
//	{"description": "…", "base": "<another preset>", "config": {<the nested Config, or the part that differs>}}
//
// "config" is read over the base preset's configuration (or over an empty one without "base"), so a file states
// only what it changes. Paths may start with $SQA_ASSETS/ (the shared assets folder, resolved when the file is
// read). A user's own file has the same form (-config FILE); a run folder's config.json is one too (it holds
// "config").

// DefaultPreset is the preset a run without -preset or -config uses.
const DefaultPreset = "smollm2"

// presetFile is a preset file's form.
type presetFile struct {
	Description string          `json:"description"`
	Base        string          `json:"base"`
	Config      json.RawMessage `json:"config"`
}

// Preset returns the named preset's configuration (experiments/presets/<name>.json; "" or "default" names
// DefaultPreset) with the default runtime.
func Preset(name string) (Config, error) {
	if name == "" || name == "default" {
		name = DefaultPreset
	}
	if _, err := fs.Stat(presets.Files, name+".json"); err != nil || strings.ContainsAny(name, `/\`) {
		return Config{}, fmt.Errorf("unknown -preset %q (want %s)", name, strings.Join(PresetNames(), ", "))
	}
	c, err := loadConfig(presets.Files, name+".json", 0)
	if err != nil {
		return Config{}, err
	}
	c.Runtime = DefaultRuntime()
	return c, nil
}

// PresetNames lists the presets, the default first.
func PresetNames() []string {
	files, _ := fs.Glob(presets.Files, "*.json")
	names := []string{DefaultPreset}
	for _, f := range files {
		if n := strings.TrimSuffix(filepath.Base(f), ".json"); n != DefaultPreset {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	return names
}

// PresetDescription is the preset's one-line description ("" when it has none or cannot be read).
func PresetDescription(name string) string {
	data, err := fs.ReadFile(presets.Files, name+".json")
	var f presetFile
	if err != nil || json.Unmarshal(data, &f) != nil {
		return ""
	}
	return f.Description
}

// LoadConfigFile reads a configuration file of the presets' form (its "base" names a preset) with the default
// runtime.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config file: %w", err)
	}
	return ParseConfigFile(data, path)
}

// ParseConfigFile reads the content of a configuration file (named path in errors) with the default runtime.
func ParseConfigFile(data []byte, path string) (Config, error) {
	c, err := decodeConfig(data, path, 0)
	if err != nil {
		return Config{}, err
	}
	c.Runtime = DefaultRuntime()
	return c, nil
}

// loadConfig reads a preset file from fsys.
func loadConfig(fsys fs.FS, name string, depth int) (Config, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return Config{}, fmt.Errorf("preset: %w", err)
	}
	return decodeConfig(data, name, depth)
}

// decodeConfig reads a configuration file's content over its base preset.
func decodeConfig(data []byte, path string, depth int) (Config, error) {
	if depth > 8 {
		return Config{}, fmt.Errorf("%s: presets based on each other in a cycle", path)
	}
	var f presetFile
	if err := json.Unmarshal(data, &f); err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(f.Config) == 0 {
		return Config{}, fmt.Errorf("config file %s: no \"config\" object", path)
	}
	var c Config
	if f.Base != "" {
		if strings.ContainsAny(f.Base, `/\`) {
			return Config{}, fmt.Errorf("config file %s: base %q: want a preset name", path, f.Base)
		}
		var err error
		if c, err = loadConfig(presets.Files, f.Base+".json", depth+1); err != nil {
			return Config{}, fmt.Errorf("config file %s: base %q: %w", path, f.Base, err)
		}
	}
	if err := overlay(&c, f.Config); err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	expandAssets(&c)
	return c, nil
}

// overlay reads a nested config object over c: the fields it names replace c's, the others stay. An unknown key
// is an error (a misspelt setting must not silently keep its base value).
func overlay(c *Config, raw json.RawMessage) error {
	type nested Config // without Config's UnmarshalJSON, so that the decoder merges field by field
	n := nested(*c)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return err
	}
	*c = Config(n)
	return nil
}

// expandAssets resolves a leading $SQA_ASSETS/ in every path setting.
func expandAssets(c *Config) {
	const prefix = "$" + assets.EnvAssets + "/"
	for _, s := range settings {
		if !s.path {
			continue
		}
		if p := s.field(c).(*string); strings.HasPrefix(*p, prefix) {
			*p = assets.Path(filepath.FromSlash(strings.TrimPrefix(*p, prefix)))
		}
	}
}
