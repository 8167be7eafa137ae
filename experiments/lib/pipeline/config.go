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
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// Config is every setting of a run. Its JSON (with resolved paths and hashes) is the run's config.json.
type Config struct {
	// Data: an official folder (problems.json, pid_splits.json, images/), or a folder of <split>-*.parquet files.
	Data         string `json:"data"`
	ProblemsFile string `json:"problems_file,omitempty"` // overrides <data>/problems.json (e.g. problems_test.json)
	SplitsFile   string `json:"splits_file,omitempty"`
	Captions     bool   `json:"captions"` // append captions.json's caption to the context
	// TrainSplit/EvalSplit name official splits; when both are empty the k-fold split of the loaded problems is
	// used: train on every fold but EvalFold, evaluate on EvalFold.
	TrainSplit string `json:"train_split,omitempty"`
	EvalSplit  string `json:"eval_split,omitempty"`
	Folds      int    `json:"folds"`
	EvalFold   int    `json:"eval_fold"`
	FoldSeed   uint64 `json:"fold_seed"`
	// Limit caps the number of train/eval problems (0: all), for quick checks.
	TrainLimit int `json:"train_limit,omitempty"`
	EvalLimit  int `json:"eval_limit,omitempty"`

	Model     string `json:"model"`
	Tokenizer string `json:"tokenizer"`
	DType     string `json:"dtype"`

	Modality  string  `json:"modality"` // text or multimodal
	Layers    int     `json:"layers"`   // L (capped at the model's depth)
	PromptLen int     `json:"prompt_len"`
	Gate      string  `json:"gate"`
	Init      string  `json:"init"`
	PromptStd float64 `json:"prompt_std"`
	GateStd   float64 `json:"gate_std"`
	Seed      uint64  `json:"seed"`

	CLIP string `json:"clip,omitempty"`
	// VisualHidden and VisualDepth shape the visual projection (0: the defaults, ≈0.6M parameters, 2 layers).
	VisualHidden int    `json:"visual_hidden,omitempty"`
	VisualDepth  int    `json:"visual_depth,omitempty"`
	CLIPLayers   string `json:"clip_layers,omitempty"`
	FeatureCache string `json:"feature_cache,omitempty"`

	Epochs       int     `json:"epochs"`
	WarmupEpochs float64 `json:"warmup_epochs"`
	Batch        int     `json:"batch"`
	Accum        int     `json:"accum"`
	BaseLR       float64 `json:"base_lr"`
	MinLR        float64 `json:"min_lr"`
	WeightDecay  float64 `json:"weight_decay"`
	ClipNorm     float64 `json:"clip_norm"`
	MaxLen       int     `json:"max_len"`
	PromptFormat string  `json:"prompt_format"`
	// NoEOSTarget drops the EOS after the answer from the training sequences (the official code trains on it).
	// Models whose EOS embedding was never trained — llama2.c's TinyStories models use BOS as the separator — would
	// otherwise spend most of the loss on a token they cannot learn to predict.
	NoEOSTarget bool `json:"no_eos_target,omitempty"`
	CkptEvery   int  `json:"checkpoint_every"`

	EvalMode  string `json:"eval_mode"` // letter, generate or both
	Fallback  string `json:"fallback"`  // random (official, seeded) or wrong, for unparsable generations
	MaxNew    int    `json:"max_new_tokens"`
	EvalBatch int    `json:"eval_batch"`

	RunsDir string `json:"-"`
	RunID   string `json:"run_id"`
	Backend string `json:"backend"`
}

// Default is the default run: the real stories260K model and tokenizer from the assets, the real ScienceQA test
// problems in the project's 5-fold split (train on folds 0-3, evaluate on fold 4), text-only, sized to finish in
// minutes on 2 CPU cores.
func Default() Config {
	return Config{
		Data: assets.Path("scienceqa"), ProblemsFile: assets.Path("scienceqa", "problems_test.json"),
		SplitsFile: assets.Path("scienceqa", "pid_splits.json"),
		Folds:      5, EvalFold: 4, FoldSeed: 0,
		Model: assets.Path("models", "stories260K", "stories260K.bin"), Tokenizer: assets.Path("models", "stories260K", "tok512.bin"),
		DType: "float32", Modality: "text", Layers: 5, PromptLen: 10, Gate: "head-tanh", Init: "zero", Seed: 0,
		Epochs: 2, WarmupEpochs: 0.5, Batch: 8, Accum: 1, BaseLR: 3, MinLR: 0, WeightDecay: 0.02, ClipNorm: 1,
		MaxLen: 256, PromptFormat: "QCM-A", CkptEvery: 50,
		EvalMode: "letter", Fallback: "random", MaxNew: 16, EvalBatch: 16,
		RunsDir: filepath.Join(assets.RepoRoot(), "results", "runs"),
	}
}

// Paper is the paper's configuration (LLaMA-7B, ViT-L/14 multimodal, K=10, L=30, official data and recipe). Paths
// name what the user must provide.
func Paper() Config {
	c := Default()
	c.Data, c.ProblemsFile, c.SplitsFile = "data/scienceqa", "", ""
	c.TrainSplit, c.EvalSplit = "train", "test"
	c.Model, c.Tokenizer = "models/llama-7b", "models/llama-7b/tokenizer.model"
	c.CLIP = "models/clip-vit-large-patch14"
	c.DType, c.Modality, c.Layers, c.PromptLen = "bfloat16", "multimodal", 30, 10
	c.Epochs, c.WarmupEpochs, c.Batch, c.Accum, c.BaseLR, c.WeightDecay, c.ClipNorm, c.MaxLen = 5, 2, 4, 8, 9e-3, 0.02, 0, 512
	c.EvalMode, c.EvalBatch = "generate", 8
	return c
}

// Presets names the configurations -preset selects.
var Presets = map[string]func() Config{"default": Default, "paper": Paper}

// Flags registers every setting on fs, with c's values as defaults.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", c.Data, "data folder: official layout (problems.json, pid_splits.json, images/) or Hugging Face parquet files")
	fs.StringVar(&c.ProblemsFile, "problems", c.ProblemsFile, "problems JSON file (default <data>/problems.json)")
	fs.StringVar(&c.SplitsFile, "splits", c.SplitsFile, "pid_splits.json (default <data>/pid_splits.json)")
	fs.BoolVar(&c.Captions, "captions", c.Captions, "append the generated image caption (captions.json) to the context")
	fs.StringVar(&c.TrainSplit, "train-split", c.TrainSplit, "official split to train on (empty: k-fold split)")
	fs.StringVar(&c.EvalSplit, "split", c.EvalSplit, "official split to evaluate on (empty: k-fold split)")
	fs.IntVar(&c.Folds, "folds", c.Folds, "number of folds of the k-fold split")
	fs.IntVar(&c.EvalFold, "fold", c.EvalFold, "evaluation fold (the others train)")
	fs.Uint64Var(&c.FoldSeed, "fold-seed", c.FoldSeed, "seed of the fold assignment")
	fs.IntVar(&c.TrainLimit, "train-limit", c.TrainLimit, "use at most this many training problems (0: all)")
	fs.IntVar(&c.EvalLimit, "eval-limit", c.EvalLimit, "evaluate at most this many problems (0: all)")
	fs.StringVar(&c.Model, "model", c.Model, "LLaMA: HF folder, llama2.c .bin or Meta consolidated .pth folder")
	fs.StringVar(&c.Tokenizer, "tokenizer", c.Tokenizer, "tokenizer: SentencePiece .model or llama2.c tokenizer.bin")
	fs.StringVar(&c.DType, "dtype", c.DType, "base weights: float32 or bfloat16")
	fs.StringVar(&c.Modality, "modality", c.Modality, "text or multimodal")
	fs.IntVar(&c.Layers, "L", c.Layers, "adapted layers (topmost)")
	fs.IntVar(&c.PromptLen, "K", c.PromptLen, "adaption prompt length")
	fs.StringVar(&c.Gate, "gate", c.Gate, "gate mode: head-tanh (official) or layer (peft)")
	fs.StringVar(&c.Init, "init", c.Init, "gate init: zero or random")
	fs.Float64Var(&c.PromptStd, "prompt-std", c.PromptStd, "std of the prompts' init (0: 1, the official code's)")
	fs.Float64Var(&c.GateStd, "gate-std", c.GateStd, "std of random gates (0: 1)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the adapter init and data order")
	fs.StringVar(&c.CLIP, "clip", c.CLIP, "CLIP vision model (HF safetensors folder) for multimodal runs")
	fs.IntVar(&c.VisualHidden, "visual-hidden", c.VisualHidden, "hidden width of the visual projection MLP (0: sized to ≈0.6M parameters, the paper's)")
	fs.IntVar(&c.VisualDepth, "visual-depth", c.VisualDepth, "linear layers of the visual projection (0: 2)")
	fs.StringVar(&c.CLIPLayers, "clip-layers", c.CLIPLayers, "CLIP layers for multi-scale features, e.g. 8,16,24 (default: 3 evenly spaced)")
	fs.StringVar(&c.FeatureCache, "feature-cache", c.FeatureCache, "feature cache folder (default <runs>/../features)")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "training epochs")
	fs.Float64Var(&c.WarmupEpochs, "warmup", c.WarmupEpochs, "warmup epochs")
	fs.IntVar(&c.Batch, "batch", c.Batch, "examples per micro-batch")
	fs.IntVar(&c.Accum, "accum", c.Accum, "micro-batches per optimizer step")
	fs.Float64Var(&c.BaseLR, "lr", c.BaseLR, "base learning rate (scaled by effective batch / 256)")
	fs.Float64Var(&c.MinLR, "min-lr", c.MinLR, "final learning rate of the cosine schedule")
	fs.Float64Var(&c.WeightDecay, "wd", c.WeightDecay, "weight decay (prompts and projection weights)")
	fs.Float64Var(&c.ClipNorm, "clip-norm", c.ClipNorm, "gradient clipping by global norm (0: off)")
	fs.IntVar(&c.MaxLen, "max-len", c.MaxLen, "maximum tokens per example (the context is truncated first)")
	fs.StringVar(&c.PromptFormat, "format", c.PromptFormat, "prompt format: QCM-A, CQM-A, QCM-LEA, QCML-A")
	fs.BoolVar(&c.NoEOSTarget, "no-eos-target", c.NoEOSTarget, "do not train on the EOS after the answer (for models whose EOS was never trained)")
	fs.IntVar(&c.CkptEvery, "checkpoint-every", c.CkptEvery, "optimizer steps between checkpoints (and every epoch end)")
	fs.StringVar(&c.EvalMode, "eval", c.EvalMode, "evaluation: letter, generate or both")
	fs.StringVar(&c.Fallback, "fallback", c.Fallback, "unparsable generations: random (official, seeded) or wrong")
	fs.IntVar(&c.MaxNew, "max-new", c.MaxNew, "generated tokens per answer")
	fs.IntVar(&c.EvalBatch, "eval-batch", c.EvalBatch, "evaluation batch size")
	fs.StringVar(&c.RunsDir, "runs", c.RunsDir, "folder of run folders")
	fs.StringVar(&c.RunID, "run", c.RunID, "run id (default: derived from the settings)")
	fs.StringVar(&c.Backend, "backend", c.Backend, "GoMLX backend config (default: $GOMLX_BACKEND or the pure-Go backend)")
}

// ID returns the run id: the given one, or a readable name plus a hash of every setting (but the backend), so the
// same settings find the same folder (and resume it) and different settings never share one.
func (c Config) ID() string {
	if c.RunID != "" {
		return c.RunID
	}
	// The backend and the run id itself are not settings of the experiment: the same run on another backend
	// (resumed after a move to a GPU, say) keeps its folder; summary.json records the backend used.
	c.Backend, c.RunID = "", ""
	// Inputs under the shared assets folder are named relative to it, so the same run has the same id in every
	// checkout that sits beside a copy of the assets (CI's clone, another machine).
	for _, p := range []*string{&c.Data, &c.ProblemsFile, &c.SplitsFile, &c.Model, &c.Tokenizer, &c.CLIP} {
		*p = assetRelative(*p)
	}
	data, _ := json.Marshal(c)
	h := sha256.Sum256(data)
	model := strings.TrimSuffix(baseName(c.Model), ".bin")
	parts := []string{model, c.Modality, "L" + strconv.Itoa(c.Layers), "K" + strconv.Itoa(c.PromptLen), c.Init, "e" + strconv.Itoa(c.Epochs), "s" + strconv.FormatUint(c.Seed, 10)}
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
