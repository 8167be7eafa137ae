package pipeline

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// committedRunDirs are the run folders committed under results/ (results/runs/* and any results/**/runs/*).
func committedRunDirs(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(assets.RepoRoot(), "results")
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == ConfigFile && filepath.Base(filepath.Dir(filepath.Dir(path))) == "runs" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// reroot maps a recorded input path under some machine's assets folder ("…/assets/<rel>") onto this checkout's
// assets folder, so the test also holds in a clone whose assets sit elsewhere.
func reroot(p string) string {
	if p == "" || strings.HasPrefix(p, assets.Dir()) {
		return p
	}
	if _, rel, ok := strings.Cut(p, "/assets/"); ok {
		return filepath.Join(assets.Dir(), rel)
	}
	return p
}

// TestCommittedRunIDs: every committed run's config.json, read into the typed Config, hashes to its folder name,
// so the typed configuration kept the id scheme.
func TestCommittedRunIDs(t *testing.T) {
	dirs := committedRunDirs(t)
	if len(dirs) == 0 {
		t.Skip("no committed run folders")
	}
	for _, dir := range dirs {
		c, err := ReadConfig(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if want := filepath.Base(dir); c.RunID != want {
			t.Errorf("%s: config.json names run %q", dir, c.RunID)
		}
		c.RunID = ""
		for _, p := range []*string{&c.Data.Dir, &c.Data.ProblemsFile, &c.Data.SplitsFile, &c.Model.Path, &c.Model.Tokenizer, &c.Vision.CLIP} {
			*p = reroot(*p)
		}
		if got, want := c.ID(), filepath.Base(dir); got != want {
			t.Errorf("%s: the typed config hashes to %s", dir, got)
		}
	}
	t.Logf("%d committed runs keep their ids", len(dirs))
}

// TestRecordRoundTrip: the JSON form is the flat record, and reading it back gives the same Config.
func TestRecordRoundTrip(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		c.Devices, c.Data.Target, c.Train.Beta2 = "all", TargetLetterText, 0.99
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"model", "layers", "prompt_len", "epochs", "modality", "devices", "target", "beta2"} {
			if _, ok := m[k]; !ok {
				t.Errorf("preset %s: JSON lacks key %q: %s", name, k, data)
			}
		}
		var back Config
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if back.ID() != c.ID() || back.Devices != "all" || back.Train.Beta2 != 0.99 || back.Data.Target != TargetLetterText {
			t.Errorf("preset %s: round trip changed the config: %+v vs %+v", name, back, c)
		}
	}
}

// TestIDIgnoresDevicesAndNewDefaults: -devices is not hashed; settings added after the committed runs change the
// id only when they leave their earlier implicit value.
func TestIDIgnoresDevicesAndNewDefaults(t *testing.T) {
	a := Stories260K()
	b := a
	b.Devices = "4"
	b.Data.Target = ""
	if a.ID() != b.ID() {
		t.Errorf("-devices or an empty target changed the id: %s vs %s", a.ID(), b.ID())
	}
	for name, mod := range map[string]func(*Config){
		"target": func(c *Config) { c.Data.Target = TargetLetterText },
		"beta1":  func(c *Config) { c.Train.Beta1 = 0.8 },
		"eval":   func(c *Config) { c.Eval.Mode = EvalCloze },
	} {
		c := a
		mod(&c)
		if c.ID() == a.ID() {
			t.Errorf("changing %s kept the id", name)
		}
	}
}

// TestFlagsBindTypedFields: flags set the typed fields directly, enums reject unknown values, and Validate
// collects the errors of one config.
func TestFlagsBindTypedFields(t *testing.T) {
	c := Stories260K()
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"-L", "3", "-init", "random", "-eval", "cloze", "-modality", "multimodal", "-clip", "random",
		"-clip-layers", "2,4", "-format", "QCML-AE", "-dtype", "bfloat16", "-target", "letter-text", "-devices", "all"}); err != nil {
		t.Fatal(err)
	}
	if c.Adapter.Layers != 3 || c.Adapter.Init != "random" || c.Eval.Mode != EvalCloze || c.Vision.Modality != Multimodal ||
		len(c.Vision.Layers) != 2 || c.Data.Format != "QCML-AE" || c.Model.DType != BFloat16 || c.Data.Target != TargetLetterText || c.Devices != "all" {
		t.Errorf("flags did not bind: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	for _, args := range [][]string{{"-eval", "bogus"}, {"-init", "half"}, {"-format", "Q-A"}, {"-modality", "audio"}} {
		c := Stories260K()
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		c.Flags(fs)
		if err := fs.Parse(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	bad := Stories260K()
	bad.Data.Format, bad.Devices, bad.Data.EvalFold = "QCM-LEA", "zero", 7
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "letter scoring") || !strings.Contains(err.Error(), "-devices") || !strings.Contains(err.Error(), "-fold") {
		t.Errorf("Validate should report every problem, got %v", err)
	}
}

// TestHelpStatesDefaultsOnce: no flag's usage names a default that the flag package prints again.
func TestHelpStatesDefaultsOnce(t *testing.T) {
	c := Stories260K()
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.Flags(fs)
	var out strings.Builder
	fs.SetOutput(&out)
	fs.PrintDefaults()
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Count(line, "(default") > 1 {
			t.Errorf("two defaults: %s", line)
		}
	}
	if !strings.Contains(out.String(), "QCLEM") || !strings.Contains(out.String(), "$SQA_PJRT_CPU") {
		t.Errorf("-format or -backend help incomplete:\n%s", out.String())
	}
}
