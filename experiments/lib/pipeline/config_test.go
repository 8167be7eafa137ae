package pipeline

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// presetOrFatal returns a preset's configuration (the tests' shorthand).
func presetOrFatal(name string) Config {
	c, err := Preset(name)
	if err != nil {
		panic(err) // the committed preset files are part of the package
	}
	return c
}

// Stories260K is the stories260K preset, the tests' base configuration.
func Stories260K() Config { return presetOrFatal("stories260K") }

// runID is c's run id, failing the test when it has none.
func runID(t *testing.T, c Config) string {
	t.Helper()
	id, err := c.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

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

// TestCommittedRunIDs: every committed run's config.json (the flat form they were written in), read into the
// nested Config, hashes to its folder name; written in the nested form and read back, it still does.
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
		if got := runID(t, c); got != filepath.Base(dir) {
			t.Errorf("%s: the typed config hashes to %s", dir, got)
		}
		back := jsonRoundTrip(t, c)
		if got := runID(t, back); got != filepath.Base(dir) {
			t.Errorf("%s: the nested form hashes to %s", dir, got)
		}
	}
	t.Logf("%d committed runs keep their ids", len(dirs))
}

// leafFields returns the address and path of every leaf field of v (a struct), descending into structs.
func leafFields(v reflect.Value, path string, out map[uintptr]string) {
	for i := 0; i < v.NumField(); i++ {
		f, ft := v.Field(i), v.Type().Field(i)
		if ft.Anonymous && ft.Type == reflect.TypeOf(Runtime{}) {
			continue // not a setting
		}
		p := path + "." + ft.Name
		if f.Kind() == reflect.Struct {
			leafFields(f, p, out)
			continue
		}
		out[f.Addr().Pointer()] = p
	}
}

// TestSettingsCover: every field of Config (outside Runtime) is declared by exactly one row of settings, every
// declared flag exists, and no two rows share a key or a flag.
func TestSettingsCover(t *testing.T) {
	var c Config
	leaves := map[uintptr]string{}
	leafFields(reflect.ValueOf(&c).Elem(), "Config", leaves)
	seen := map[uintptr]int{}
	keys, flags := map[string]bool{}, map[string]bool{}
	for i, s := range settings {
		if s.key != "" {
			if keys[s.key] {
				t.Errorf("key %q declared twice", s.key)
			}
			keys[s.key] = true
		}
		if s.flag != "" {
			if flags[s.flag] {
				t.Errorf("flag -%s declared twice", s.flag)
			}
			flags[s.flag] = true
		}
		if s.field == nil {
			continue
		}
		addr := reflect.ValueOf(s.field(&c)).Pointer()
		if _, ok := leaves[addr]; !ok {
			t.Errorf("settings[%d] (%s) points at no leaf field of Config", i, s.name())
		}
		seen[addr]++
	}
	for addr, path := range leaves {
		if seen[addr] != 1 {
			t.Errorf("%s is declared %d times in settings (want once: add a row for a new field)", path, seen[addr])
		}
	}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.Flags(fs)
	for f := range flags {
		if fs.Lookup(f) == nil {
			t.Errorf("-%s declared but not registered", f)
		}
	}
}

// mutate changes the field p points at to another valid-typed value.
func mutate(p any) {
	switch p := p.(type) {
	case *string:
		*p += "x"
	case *int:
		*p += 3
	case *uint64:
		*p += 3
	case *float64:
		*p += 0.25
	case *bool:
		*p = !*p
	case *[]int:
		*p = append(*p, 7)
	case *DType:
		*p = BFloat16
	case *Modality:
		*p = Multimodal
	case *EvalMode:
		*p = EvalCloze
	case *scienceqa.Fallback:
		*p = scienceqa.FallbackWrong
	case *scienceqa.Target:
		*p = scienceqa.TargetCloze
	default:
		v := reflect.ValueOf(p).Elem()
		if v.Kind() == reflect.String {
			v.SetString(v.String() + "x")
		}
	}
}

// TestSettingsRoles: a config field declared once shows up in the flags, config.json and the run id as declared:
// changing a hashed setting changes the id, changing any other keeps it; every setting (and no runtime knob)
// survives config.json's nested form.
func TestSettingsRoles(t *testing.T) {
	base := Stories260K()
	id := runID(t, base)
	for _, s := range settings {
		if s.field == nil {
			continue
		}
		c := base
		c.Vision.Layers = append([]int(nil), base.Vision.Layers...)
		mutate(s.field(&c))
		if s.derived {
			continue
		}
		got := runID(t, c)
		if (got != id) != (s.hash != hashNever) {
			t.Errorf("%s: hash role %d, but changing it gives id %s (base %s)", s.name(), s.hash, got, id)
		}
		back := jsonRoundTrip(t, c)
		if !reflect.DeepEqual(s.field(&back), s.field(&c)) {
			t.Errorf("%s not recorded: %v after the round trip, want %v", s.name(), reflect.ValueOf(s.field(&back)).Elem(), reflect.ValueOf(s.field(&c)).Elem())
		}
	}
	// A setting added later is out of the hash only at its earlier implicit value, not at every zero.
	for _, mod := range []func(*Config){func(c *Config) { c.Train.Beta1 = 0 }, func(c *Config) { c.Train.PadMultiple = 8 }} {
		c := base
		mod(&c)
		if runID(t, c) == id {
			t.Errorf("a changed setting kept the id: %+v", c.Train)
		}
	}
	// A config.json written before the target existed, or with its empty value, reads as letter.
	emptyTarget := func(c *Config) {
		if err := json.Unmarshal([]byte(`{"target": ""}`), &c.Data); err != nil || c.Data.Target != scienceqa.TargetLetter {
			t.Errorf(`"target": "" reads as %v (%v), want letter`, c.Data.Target, err)
		}
	}
	for _, mod := range []func(*Config){emptyTarget, func(c *Config) { c.Train.PadMultiple = 0 }} {
		c := base
		mod(&c)
		if runID(t, c) != id {
			t.Errorf("an implicit value changed the id: %+v", c.Train)
		}
	}
	// Runtime knobs: neither recorded nor hashed.
	c := base
	c.Runtime = Runtime{Devices: "4", RunsDir: "/elsewhere", Backend: "go", FeatureCache: "/f", ZeroShotCache: "/z", Install: true, Force: true, Wait: true}
	if runID(t, c) != id {
		t.Error("a runtime knob changed the id")
	}
	data, _ := json.Marshal(c)
	for _, v := range []string{"/elsewhere", "/f", "/z"} {
		if strings.Contains(string(data), v) {
			t.Errorf("runtime knob %s recorded in %s", v, data)
		}
	}
}

// TestNewFlagsAndRecord: the settings that had no flag (-beta1, -answer-head) or were not recorded (-zero-shot,
// answer_head) now are.
func TestNewFlagsAndRecord(t *testing.T) {
	c := parseFlags(t, "-beta1", "0.8", "-answer-head", "-zero-shot")
	if c.Train.Beta1 != 0.8 || !c.Train.AnswerHead || !c.Eval.ZeroShot {
		t.Fatalf("flags did not bind: %+v", c)
	}
	data, _ := json.Marshal(c)
	var back Config
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Train.Beta1 != 0.8 || !back.Train.AnswerHead || !back.Eval.ZeroShot {
		t.Errorf("not recorded: %s", data)
	}
}

// TestPresetFiles: every preset file reads, validates, and smollm2 is the default run.
func TestPresetFiles(t *testing.T) {
	names := PresetNames()
	if names[0] != DefaultPreset || len(names) < 3 {
		t.Fatalf("presets %v", names)
	}
	for _, n := range names {
		c, err := Preset(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", n, err)
		}
	}
	s := presetOrFatal("smollm2")
	if s.Model.Path != "smollm2" || s.Adapter.Layers != 30 || s.Train.BaseLR != 0.3 || s.Data.Target != scienceqa.TargetCloze ||
		!s.Eval.ZeroShot || s.Data.ProblemsFile != assets.Path("scienceqa", "problems_test.json") {
		t.Errorf("smollm2 preset: %+v", s)
	}
	if _, err := Preset("../presets/smollm2"); err == nil {
		t.Error("a preset name with a path was accepted")
	}
	t.Chdir(t.TempDir()) // the presets are embedded: a built command finds them from anywhere
	if c, err := Preset("paper"); err != nil || c.Adapter.Layers != 30 {
		t.Errorf("preset outside the repository: %v", err)
	}
}

// TestUserConfigFile: a user's file states what differs from its base; a misspelt key is an error.
func TestUserConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "mine.json")
	os.WriteFile(good, []byte(`{"base": "stories260K", "config": {"train": {"epochs": 3}, "adapter": {"prompt_len": 4}}}`), 0o644)
	c, err := LoadConfigFile(good)
	if err != nil {
		t.Fatal(err)
	}
	want := Stories260K()
	want.Train.Epochs, want.Adapter.PromptLen = 3, 4
	if runID(t, c) != runID(t, want) {
		t.Errorf("user file: %+v", c)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"base": "stories260K", "config": {"train": {"epoch": 3}}}`), 0o644)
	if _, err := LoadConfigFile(bad); err == nil || !strings.Contains(err.Error(), "epoch") {
		t.Errorf("misspelt key: %v", err)
	}
}

// TestFlagsBindTypedFields: flags set the typed fields directly, enums reject unknown values, and Validate
// collects the errors of one config.
func TestFlagsBindTypedFields(t *testing.T) {
	c := parseFlags(t, "-L", "3", "-init", "random", "-eval", "cloze", "-modality", "multimodal", "-clip", "random",
		"-clip-layers", "2,4", "-format", "QCML-AE", "-dtype", "bfloat16", "-target", "letter-text", "-devices", "all")
	if c.Adapter.Layers != 3 || c.Adapter.Init != "random" || c.Eval.Mode != EvalCloze || c.Vision.Modality != Multimodal ||
		len(c.Vision.Layers) != 2 || c.Data.Format != "QCML-AE" || c.Model.DType != BFloat16 || c.Data.Target != scienceqa.TargetLetterText || c.Devices != "all" {
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

// TestValidateNamesFlags (issue 28): non-finite, negative and zero settings are refused before any work, each
// error naming its flag, and a configuration that cannot be encoded has no run id.
func TestValidateNamesFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-wd", "NaN"}, "-wd"}, {[]string{"-lr", "Inf"}, "-lr"}, {[]string{"-min-lr", "-1"}, "-min-lr"},
		{[]string{"-warmup", "NaN"}, "-warmup"}, {[]string{"-clip-norm", "-1"}, "-clip-norm"}, {[]string{"-wd", "-0.1"}, "-wd"},
		{[]string{"-prompt-std", "-1"}, "-prompt-std"}, {[]string{"-gate-std", "Inf"}, "-gate-std"},
		{[]string{"-checkpoint-every", "-5"}, "-checkpoint-every"}, {[]string{"-batch", "0"}, "-batch"},
		{[]string{"-accum", "0"}, "-accum"}, {[]string{"-max-len", "0"}, "-max-len"}, {[]string{"-lr", "0"}, "-lr"},
		{[]string{"-run", "."}, "-run"}, {[]string{"-run", "../x"}, "-run"}, {[]string{"-run", "a/b"}, "-run"},
	} {
		c := parseFlags(t, tc.args...)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.flag+" ") && !strings.Contains(err.Error(), tc.flag+":") {
			t.Errorf("%v: want an error naming %s, got %v", tc.args, tc.flag, err)
		}
		if err != nil && strings.Contains(err.Error(), "{") {
			t.Errorf("%v: error dumps a struct: %v", tc.args, err)
		}
	}
	c := Stories260K()
	c.Train.WeightDecay = math.NaN()
	if id, err := c.ID(); err == nil {
		t.Errorf("a NaN setting hashed to %s", id)
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

// jsonRoundTrip encodes c as JSON and decodes it back into a fresh Config.
func jsonRoundTrip(t *testing.T, c Config) Config {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	return back
}
