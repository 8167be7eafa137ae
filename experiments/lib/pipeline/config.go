// Package pipeline is one ScienceQA run of LLaMA-Adapter, end to end: data (official JSON or Hugging Face parquet;
// a split or the project's k-fold split), prompts and tokens, the frozen model and the adapter, optional CLIP
// features, training with checkpoints and resume, evaluation (letter scoring and/or greedy generation), scoring by
// category and the run folder (config.json, metrics.jsonl, adapter.safetensors, predictions.json, summary.json,
// loss.png/svg). experiments/scienceqa and experiments/ablations are thin commands over it.
package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/pinned"
)

// Config is every setting of a run, grouped by the package that owns it: the packages' own typed configs
// (adapter.Config, train.Config) and the pipeline's data, model, vision and evaluation settings. Each field's
// roles (flag, part of the run id, range) are declared once, in settings (settings.go); every field is recorded
// (config.json and summary.json hold this struct as nested JSON). Presets are data files (presets.go).
//
// Runtime, embedded, is where and how the run executes: never recorded, never part of the run id.
type Config struct {
	Data  DataConfig  `json:"data"`
	Model ModelConfig `json:"model"`
	// Adapter is the adapter's shape and init. Layers must not exceed the model's depth (checked once the model is
	// loaded); Seed comes from Config.Seed and Visual from Vision and the features' shape (adapterConfig).
	Adapter adapter.Config `json:"adapter"`
	Vision  VisionConfig   `json:"vision"`
	// Train is the optimization recipe; Seed comes from Config.Seed (trainConfig).
	Train train.Config `json:"train"`
	Eval  EvalConfig   `json:"eval"`
	// Seed seeds the adapter's init, the data order, the fallback's random choices and a random-weight CLIP.
	Seed uint64 `json:"seed"`

	Runtime `json:"-"`
}

// Runtime is where and how a run is carried out. None of it is a setting of the experiment: it is neither
// recorded as one nor part of the run id (summary.json records the backend and devices that were used).
type Runtime struct {
	// Devices is how many devices training and evaluation shard the batch over ("1", a number or "all"):
	// data-parallel results are the same computation.
	Devices string
	RunsDir string
	RunID   string // "" derives it from the settings (ID)
	Backend string // GoMLX backend configuration; "" resolves it (models/device)
	// FeatureCache is the image-feature cache folder ("": <runs>/../features); entries are keyed by the tower's
	// weights and the images, so any folder gives the same features.
	FeatureCache string
	// MaxPixels refuses images over this many pixels from their header, before decoding (0: clip.DefaultMaxPixels);
	// a guard, not a setting: it changes no features.
	MaxPixels int
	// ZeroShotCache is the folder of cached zero-shot scores ("": DefaultZeroShotCache, results/zero-shot).
	ZeroShotCache string
	// Install lets a main install a missing pinned model or the XLA CPU plugin (flag -install, $SQA_NO_INSTALL).
	Install bool
	// Force deletes a complete run folder and runs it again.
	Force bool
	// ForceResume continues a run folder whose recorded inputs or settings differ from the current ones (the
	// differences are recorded in config.json); without it such a folder is refused untouched.
	ForceResume bool
	// Wait waits for another process working in the same run folder to finish, instead of refusing to start.
	Wait bool
	// SkipBadImages runs problems whose image does not decode without image features (recorded in summary.json
	// and the table); without it such an image is an error.
	SkipBadImages bool
	// SkipTable makes a complete run print only that it is complete, not its table (sweeps print their own).
	SkipTable bool
	// OnStep, when set, is called after every optimizer step (a caller's own progress display or stopping rule).
	OnStep func(train.StepInfo)
}

// DefaultRuntime runs in the repository's results/runs on one device, installing pinned files unless
// $SQA_NO_INSTALL says not to.
func DefaultRuntime() Runtime {
	return Runtime{Devices: "1", RunsDir: filepath.Join(assets.RepoRoot(), "results", "runs"), Install: !assets.NoInstall()}
}

// DataConfig is which problems a run trains and evaluates on, and how they become prompts.
type DataConfig struct {
	// Dir is an official folder (problems.json, pid_splits.json, images/) or a folder of <split>-*.parquet files.
	Dir          string `json:"dir"`
	ProblemsFile string `json:"problems_file,omitempty"` // overrides <Dir>/problems.json (e.g. problems_test.json)
	SplitsFile   string `json:"splits_file,omitempty"`   // overrides <Dir>/pid_splits.json
	Captions     bool   `json:"captions"`                // append captions.json's caption to the context
	// TrainSplit/EvalSplit name official splits; when both are empty the k-fold split of the loaded problems is
	// used: train on every fold but EvalFold, evaluate on EvalFold.
	TrainSplit string `json:"train_split,omitempty"`
	EvalSplit  string `json:"eval_split,omitempty"`
	Folds      int    `json:"folds"`
	EvalFold   int    `json:"eval_fold"`
	FoldSeed   uint64 `json:"fold_seed"`
	// TrainLimit and EvalLimit cap the number of problems (0: all), for quick checks.
	TrainLimit int              `json:"train_limit"`
	EvalLimit  int              `json:"eval_limit"`
	Format     scienceqa.Format `json:"format"`
	// Target is how the answer is written in the training sequences.
	Target scienceqa.Target `json:"target"`
	// NoEOSTarget drops the EOS after the answer from the training sequences (the official code trains on it).
	// Models whose EOS embedding was never trained — llama2.c's TinyStories models use BOS as the separator — would
	// otherwise spend most of the loss on a token they cannot learn to predict.
	NoEOSTarget bool `json:"no_eos_target"`
}

// ModelConfig is the frozen base model.
type ModelConfig struct {
	// Path is the model: a pinned name (assets.ModelNames, installed on demand) or a path (HF folder, llama2.c
	// .bin, Meta .pth folder, GGUF file). Tokenizer likewise (a GGUF model carries its own tokenizer).
	Path      string `json:"path"`
	Tokenizer string `json:"tokenizer"`
	DType     DType  `json:"dtype"`
}

// VisionConfig is the image side of multimodal runs.
type VisionConfig struct {
	Modality Modality `json:"modality"`
	// CLIP is the vision encoder (HF safetensors folder), or "random" for a random-weight encoder.
	CLIP string `json:"clip,omitempty"`
	// Layers are the encoder layers whose class tokens are the multi-scale features (nil: 3 evenly spaced).
	Layers []int `json:"layers,omitempty"`
	// Projection shapes the visual projection: Hidden (0: ≈0.6M parameters) and Depth (0: 2); its Scales and
	// FeatureDim come from the encoder.
	Projection adapter.VisualConfig `json:"projection"`
}

// EvalConfig is how the evaluation problems are answered.
type EvalConfig struct {
	Mode     EvalMode           `json:"mode"`
	Fallback scienceqa.Fallback `json:"fallback"` // for generations without a parsable answer
	MaxNew   int                `json:"max_new"`  // generated tokens per answer
	Batch    int                `json:"batch"`
	// ZeroShot adds the pretrained model's own scores on the same problems to the run's baselines (measured once
	// per inputs and cached, see zeroshot.go). Recorded, not part of the run id: it changes no trained result.
	ZeroShot bool `json:"zero_shot"`
}

// adapterConfig is the adapter's configuration for a model of numLayers layers, with the run's seed and the visual
// projection for features of the given shape (nil: text-only). L beyond the model's depth is an error, not capped:
// the run id and the record must say what ran.
func (c Config) adapterConfig(numLayers int, visual *adapter.VisualConfig) (adapter.Config, error) {
	a := c.Adapter
	if a.Layers > numLayers {
		return a, fmt.Errorf("-L %d (adapter.layers): the model has %d layers", a.Layers, numLayers)
	}
	a.Seed = c.Seed
	a.Visual = visual
	return a, nil
}

// trainConfig is the trainer's recipe with the run's seed.
func (c Config) trainConfig() train.Config {
	t := c.Train
	t.Seed = c.Seed
	return t
}

// formatHelp lists the prompt formats from the dataset package's own error text (its lists are unexported).
func formatHelp() string {
	_, err := scienceqa.ParseFormat("?")
	msg := ""
	if err != nil {
		if _, want, ok := strings.Cut(err.Error(), "(want "); ok {
			msg = strings.TrimSuffix(want, ")")
		}
	}
	return "prompt format INPUT-OUTPUT, every base_prompt.py combination: " + msg + " (letter scoring needs an output of A)"
}

// backendHelp says how an empty -backend is resolved, naming the installed XLA CPU plugin if there is one.
func backendHelp() string {
	plugin := "not installed: bash .ci/install-pjrt-cpu.sh"
	if p := device.InstalledPlugin(); p != "" {
		plugin = p
	}
	return fmt.Sprintf("GoMLX backend, e.g. xla:/abs/pjrt_c_api_cpu_plugin.so or %s; empty: $%s, else xla:$%s, else the installed XLA CPU plugin (%s), else %s",
		device.DefaultGoConfig, device.EnvVar, device.PluginEnvVar, plugin, device.DefaultGoConfig)
}

// Flags registers every setting that has a flag (settings) and the runtime flags on fs, bound to c's fields, with
// c's values as defaults. Help texts name what an empty value means; the flag package prints the actual default.
func (c *Config) Flags(fs *flag.FlagSet) {
	bindSettings(fs, c)
	c.Runtime.flags(fs)
}

// flags registers the runtime flags.
func (r *Runtime) flags(fs *flag.FlagSet) {
	fs.StringVar(&r.Devices, "devices", r.Devices, "devices to shard the batch over: a number or all (not part of the run id)")
	fs.StringVar(&r.RunsDir, "runs", r.RunsDir, "folder of run folders (a fresh one runs everything afresh)")
	fs.StringVar(&r.RunID, "run", r.RunID, "run id ("+runIDChars+"); empty: derived from the settings")
	fs.StringVar(&r.Backend, "backend", r.Backend, backendHelp())
	fs.StringVar(&r.FeatureCache, "feature-cache", r.FeatureCache, "feature cache folder; empty: <runs>/../features")
	fs.IntVar(&r.MaxPixels, "max-image-pixels", r.MaxPixels, "refuse images over this many pixels before decoding them (0: 40 Mpixel)")
	fs.StringVar(&r.ZeroShotCache, "zero-shot-cache", r.ZeroShotCache, "folder of cached zero-shot scores (default: results/zero-shot in the repository)")
	fs.BoolVar(&r.Install, "install", r.Install, "install a missing pinned model or the XLA CPU plugin (from PyPI, sha256-pinned; $"+assets.EnvNoInstall+"=1 turns it off)")
	fs.BoolVar(&r.Force, "force", r.Force, "delete a complete run folder of the same settings and run it again")
	fs.BoolVar(&r.ForceResume, "force-resume", r.ForceResume, "continue a run folder recorded with other inputs or settings (recorded in its config.json)")
	fs.BoolVar(&r.Wait, "wait", r.Wait, "wait for another process working in the same run folder instead of exiting")
	fs.BoolVar(&r.SkipBadImages, "skip-bad-images", r.SkipBadImages, "run problems whose image does not decode without image features (listed in summary.json and the table) instead of stopping")
}

// Validate checks every setting that can be checked without reading files, before any work: each number in its
// declared range (floats finite), each enum one of its values, the combinations consistent, the run id a valid
// folder name. Every error names the flag (or config field) and all of them are reported together.
func (c Config) Validate() error {
	errs := checkRanges(&c)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d, v, e := c.Data, c.Vision, c.Eval
	if c.Model.Path == "" || c.Model.Tokenizer == "" || d.Dir == "" {
		bad("-model, -tokenizer and -data are required")
	}
	for _, en := range []struct {
		name string
		err  error
	}{{"-dtype", setEnum(new(DType), string(c.Model.DType), DTypes)}, {"-modality", setEnum(new(Modality), string(v.Modality), Modalities)},
		{"-eval", new(EvalMode).Set(string(e.Mode))}, {"-fallback", new(scienceqa.Fallback).Set(e.Fallback.String())}, {"-target", new(scienceqa.Target).Set(d.Target.String())}} {
		if en.err != nil {
			bad("%s %w", en.name, en.err)
		}
	}
	if _, err := scienceqa.ParseFormat(string(d.Format)); err != nil {
		bad("-format: %w", err)
	} else if e.Mode.letter() && !strings.HasSuffix(string(d.Format), "-A") {
		bad("-eval %s: letter scoring needs a format whose output is the answer alone (X-A), not %s: use -eval generate or cloze", e.Mode, d.Format)
	}
	switch {
	case (d.TrainSplit == "") != (d.EvalSplit == ""):
		bad("-train-split and -split go together (or neither, for the k-fold split)")
	case d.TrainSplit == "" && (d.Folds < 2 || d.EvalFold < 0 || d.EvalFold >= d.Folds):
		bad("-fold %d of -folds %d: need folds ≥ 2 and 0 ≤ fold < folds", d.EvalFold, d.Folds)
	}
	if v.Modality == Multimodal && v.CLIP == "" {
		bad("-modality multimodal needs -clip (a CLIP checkpoint, or \"random\" for a random-weight encoder)")
	}
	if len(errs) == 0 { // the packages' own checks repeat the ranges above without naming flags
		// The model's depth is unknown here (adapterConfig checks it): check the adapter against a model as deep as L.
		if err := c.Adapter.Validate(llama.Config{NumLayers: max(c.Adapter.Layers, 1)}); err != nil {
			errs = append(errs, err)
		}
		if err := c.trainConfig().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.Mode.generate() && e.MaxNew < 1 {
		bad("-max-new %d: generation needs at least 1 new token", e.MaxNew)
	}
	if e.Mode.generate() && e.MaxNew >= c.Train.MaxLen {
		bad("-max-new %d leaves no room for the prompt within -max-len %d", e.MaxNew, c.Train.MaxLen)
	}
	if _, err := device.ParseDeviceCount(c.Devices); err != nil {
		errs = append(errs, err)
	}
	if c.RunID != "" {
		if err := ValidRunID(c.RunID); err != nil {
			bad("-run: %w", err)
		}
	}
	return errors.Join(errs...)
}

// runIDChars describes the characters a run id may hold.
const runIDChars = "letters, digits, '.', '_', '-', '+'; not starting with '.'"

// ValidRunID checks that id names one folder inside the runs folder: one path element of letters, digits and
// . _ - +, not starting with a dot (so never "." or ".."), at most 200 bytes.
func ValidRunID(id string) error {
	switch {
	case id == "" || len(id) > 200:
		return fmt.Errorf("run id %q: want 1 to 200 characters (%s)", id, runIDChars)
	case id[0] == '.':
		return fmt.Errorf("run id %q: starts with '.' (it must name one folder inside the runs folder)", id)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+", r)
		if !ok {
			return fmt.Errorf("run id %q: character %q not allowed (%s)", id, r, runIDChars)
		}
	}
	return nil
}

// ParseDevices reads -devices: "" or "1" is one device, "all" every device (0 here), N a count.
func ParseDevices(s string) (int, error) {
	switch s {
	case "", "1":
		return 1, nil
	case "all":
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("-devices %q: want a positive number or all", s)
	}
	return n, nil
}

// UnmarshalJSON reads the nested form, or the flat form of config files written before it (readFlat). The
// runtime part is left zero.
func (c *Config) UnmarshalJSON(b []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if m := bytes.TrimSpace(probe["model"]); len(m) > 0 && m[0] != '{' {
		cfg, err := readFlat(b)
		if err != nil {
			return fmt.Errorf("flat config: %w", err)
		}
		cfg.Runtime = c.Runtime
		*c = cfg
		return nil
	}
	type nested Config // without this method; decoding into a copy of c merges field by field
	n := nested(*c)
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*c = Config(n)
	return nil
}

// ReadConfig reads a run folder's config.json (either form) with the folder's run id and runs folder.
func ReadConfig(dir string) (Config, error) {
	fr, err := readFolderRecord(dir)
	if err != nil {
		return Config{}, err
	}
	c := fr.Config
	c.RunID = fr.RunID
	c.RunsDir = filepath.Dir(filepath.Clean(dir))
	return c, nil
}

// ID returns the run id: the given one (checked by ValidRunID), or a readable name plus a hash of every hashed
// setting (settings), so the same settings find the same folder (and resume it) and different settings never share
// one. A configuration whose settings cannot be encoded (a NaN, say) has no id: that is an error, never the hash
// of nothing.
//
// Inputs under the shared assets folder are named relative to it, so the same run has the same id in every
// checkout that sits beside a copy of the assets (CI's clone, another machine).
func (c Config) ID() (string, error) {
	if c.RunID != "" {
		return c.RunID, ValidRunID(c.RunID)
	}
	data, err := encodeHashed(c.hashed())
	if err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	h := sha256.Sum256(data)
	model := strings.TrimSuffix(baseName(c.Model.Path), ".bin")
	parts := []string{model, string(c.Vision.Modality)}
	if v := c.Adapter.Version; v != "" && v != "v1" {
		parts = append(parts, string(v)) // only when not the default, so V1 ids keep their form
	}
	parts = append(parts, "L"+strconv.Itoa(c.Adapter.Layers), "K"+strconv.Itoa(c.Adapter.PromptLen),
		string(c.Adapter.Init), "e"+strconv.FormatFloat(c.Train.Epochs, 'f', -1, 64), "s"+strconv.FormatUint(c.Seed, 10))
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+", r) {
			return r
		}
		return '_' // a model file named with other characters still gives a valid folder name
	}, strings.Join(parts, "-"))
	if strings.HasPrefix(name, ".") {
		name = "_" + name[1:]
	}
	return name + "-" + hex.EncodeToString(h[:4]), nil
}

// assetRelative rewrites a path inside the assets folder as "$SQA_ASSETS/<rel>"; other paths are unchanged.
func assetRelative(p string) string {
	if p == "" {
		return p
	}
	root, err1 := filepath.Abs(assets.Dir())
	abs, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return p
	}
	if rel, err := filepath.Rel(root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return "$" + assets.EnvAssets + "/" + filepath.ToSlash(rel)
	}
	return p
}

func baseName(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// fileDigest identifies a file by content: sha256 of the whole file up to 256 MB; beyond that (model checkpoints of
// many GB) sha256 of the size, the first and the last 64 MB, which tells any two real checkpoints apart without
// reading gigabytes on every run.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if st.IsDir() {
		return "", fmt.Errorf("%s is a folder", path)
	}
	const whole, part = 256 << 20, 64 << 20
	if st.Size() <= whole {
		// One hash per file per process, shared with the loaders' pinned-hash checks (models/pinned).
		sum, err := pinned.SHA256(path)
		return "sha256:" + sum, err
	}
	fmt.Fprintf(h, "size=%d;", st.Size())
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, part)); err != nil {
		return "", err
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, st.Size()-part, part)); err != nil {
		return "", err
	}
	return "sha256-partial:" + hex.EncodeToString(h.Sum(nil)), nil
}
