package pipeline

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// A setting is one field of Config, declared once: its flag, its key in the run id's hash, and its range. The
// table below (settings) is the only place a field's roles are written; Flags, ID, the settings compared on resume,
// Validate's range checks and the reader of flat (pre-nesting) config files all walk it, and TestSettingsCover
// checks that every field of Config is declared exactly once. Every field of Config is recorded (config.json and
// summary.json hold the nested Config); where a run executes (Runtime) is not a setting and is never recorded or
// hashed.
//
// Adding a setting: a field in Config (or in the adapter's or trainer's config) and one row here. A row whose hash
// is hashOmit with the field's earlier implicit value in omit keeps every existing run id.
type setting struct {
	// key is the setting's name in the run id's hash and in flat config files (config.json before the nested
	// form); "" for a field that is not hashed and never was flat.
	key string
	// flag is the command-line flag ("" for none).
	flag  string
	usage string
	// field returns a pointer to the field in c; nil for a hash constant (see legacyConstant).
	field func(c *Config) any
	// value binds the flag when the field's own type is not a flag.Value (e.g. another package's string type).
	value func(c *Config, s *flagScratch) flag.Value
	hash  hashRole
	// omit lists the values a hashOmit setting is left out of the hash at (without it: the zero value); the first is
	// the implicit value runs recorded before the setting existed had.
	omit []any
	// path marks an input path: hashed relative to the assets folder and compared by content digest on resume.
	path bool
	// rng is the allowed range of a number (checked by Validate; floats must also be finite).
	rng *numRange
	// derived says the field is filled from another setting at run time (not a flag, not hashed).
	derived bool
}

// hashRole says how a setting enters the run id.
type hashRole int

const (
	hashNever  hashRole = iota // recorded, not part of the id (it changes no result)
	hashAlways                 // always part of the id
	hashOmit                   // part of the id unless at one of the row's omit values (default: zero)
)

// numRange is a closed or half-open interval: lo ≤ x (lo < x when loOpen), and x < hi when hi is set.
type numRange struct {
	lo     float64
	loOpen bool
	hi     *float64
}

func (r numRange) String() string {
	s := fmt.Sprintf("≥ %g", r.lo)
	if r.loOpen {
		s = fmt.Sprintf("> %g", r.lo)
	}
	if r.hi != nil {
		s += fmt.Sprintf(" and < %g", *r.hi)
	}
	return s
}

func (r numRange) holds(x float64) bool {
	return (x > r.lo || (!r.loOpen && x == r.lo)) && (r.hi == nil || x < *r.hi)
}

func atLeast(lo float64) *numRange { return &numRange{lo: lo} }
func above(lo float64) *numRange   { return &numRange{lo: lo, loOpen: true} }
func unit() *numRange              { one := 1.0; return &numRange{lo: 0, hi: &one} }

// legacyConstant marks the two keys the flat record always hashed as "" (run_id and backend, cleared before
// hashing); they stay in the hash as constants so every recorded id holds.
func legacyConstant(key string) setting { return setting{key: key, hash: hashAlways} }

// flagScratch is per-FlagSet state of flags that depend on each other (-data resets -problems and -splits).
type flagScratch struct{ problemsGiven, splitsGiven bool }

// settings is the declaration of every Config field. The hashed rows come first, in the order of the flat record
// every committed run was hashed with (the order is part of the hash).
var settings = []setting{
	{key: "data", flag: "data", path: true, hash: hashAlways, field: func(c *Config) any { return &c.Data.Dir },
		value: func(c *Config, s *flagScratch) flag.Value { return dataDirFlag(&c.Data, s) },
		usage: "data folder or file: official layout (problems.json, pid_splits.json, images/), Hugging Face parquet files (<split>-*.parquet, or data/ of a snapshot) or one .parquet file; -problems and -splits default to its files"},
	{key: "problems_file", flag: "problems", path: true, hash: hashOmit, field: func(c *Config) any { return &c.Data.ProblemsFile },
		value: func(c *Config, s *flagScratch) flag.Value {
			return dataFileFlag(&c.Data.ProblemsFile, &s.problemsGiven)
		},
		usage: "problems JSON file; empty: the one in -data"},
	{key: "splits_file", flag: "splits", path: true, hash: hashOmit, field: func(c *Config) any { return &c.Data.SplitsFile },
		value: func(c *Config, s *flagScratch) flag.Value { return dataFileFlag(&c.Data.SplitsFile, &s.splitsGiven) },
		usage: "pid_splits.json; empty: the one in -data"},
	{key: "captions", flag: "captions", hash: hashAlways, field: func(c *Config) any { return &c.Data.Captions },
		usage: "append the generated image caption (captions.json) to the context"},
	{key: "train_split", flag: "train-split", hash: hashOmit, field: func(c *Config) any { return &c.Data.TrainSplit },
		usage: "official split to train on; empty: the k-fold split"},
	{key: "eval_split", flag: "split", hash: hashOmit, field: func(c *Config) any { return &c.Data.EvalSplit },
		usage: "official split to evaluate on; empty: the k-fold split"},
	{key: "folds", flag: "folds", hash: hashAlways, field: func(c *Config) any { return &c.Data.Folds }, usage: "number of folds of the k-fold split"},
	{key: "eval_fold", flag: "fold", hash: hashAlways, field: func(c *Config) any { return &c.Data.EvalFold }, usage: "evaluation fold (the others train)"},
	{key: "fold_seed", flag: "fold-seed", hash: hashAlways, field: func(c *Config) any { return &c.Data.FoldSeed }, usage: "seed of the fold assignment"},
	{key: "train_limit", flag: "train-limit", hash: hashOmit, rng: atLeast(0), field: func(c *Config) any { return &c.Data.TrainLimit },
		usage: "use at most this many training problems (0: all)"},
	{key: "eval_limit", flag: "eval-limit", hash: hashOmit, rng: atLeast(0), field: func(c *Config) any { return &c.Data.EvalLimit },
		usage: "evaluate at most this many problems (0: all)"},
	{key: "model", flag: "model", path: true, hash: hashAlways, field: func(c *Config) any { return &c.Model.Path },
		usage: "model: a pinned name (" + strings.Join(assets.ModelNames(), ", ") + "; installed on demand) or a path: HF folder, llama2.c .bin, Meta .pth folder or GGUF file"},
	{key: "tokenizer", flag: "tokenizer", path: true, hash: hashAlways, field: func(c *Config) any { return &c.Model.Tokenizer },
		usage: "tokenizer: a pinned model name, SentencePiece .model, llama2.c tokenizer.bin, HF tokenizer.json or GGUF file"},
	{key: "dtype", flag: "dtype", hash: hashAlways, field: func(c *Config) any { return &c.Model.DType }, usage: "base weights: " + enumList(DTypes)},
	{key: "modality", flag: "modality", hash: hashAlways, field: func(c *Config) any { return &c.Vision.Modality }, usage: "input: " + enumList(Modalities)},
	{key: "layers", flag: "L", hash: hashAlways, rng: atLeast(1), field: func(c *Config) any { return &c.Adapter.Layers },
		usage: "adapted layers (the topmost; more than the model has is an error)"},
	{key: "prompt_len", flag: "K", hash: hashAlways, rng: atLeast(1), field: func(c *Config) any { return &c.Adapter.PromptLen }, usage: "adaption prompt length"},
	{key: "gate", flag: "gate", hash: hashAlways, field: func(c *Config) any { return &c.Adapter.Gate },
		value: func(c *Config, _ *flagScratch) flag.Value {
			return parsedFlag[adapter.GateMode]{&c.Adapter.Gate, oneOf(adapter.GateModes...)}
		},
		usage: "gate formula: head-tanh (official: tanh of one gate per head), head (litgpt: one per head, as is) or layer (peft: one per layer, as is)"},
	{key: "init", flag: "init", hash: hashAlways, field: func(c *Config) any { return &c.Adapter.Init },
		value: func(c *Config, _ *flagScratch) flag.Value {
			return parsedFlag[adapter.InitScheme]{&c.Adapter.Init, oneOf(adapter.InitZero, adapter.InitRandom)}
		},
		usage: "gate init: zero or random"},
	{key: "prompt_std", flag: "prompt-std", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Adapter.PromptStd },
		usage: "std of the prompts' init (0: 1, the official code's)"},
	{key: "gate_std", flag: "gate-std", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Adapter.GateStd },
		usage: "std of random gates (0: 1)"},
	{key: "seed", flag: "seed", hash: hashAlways, field: func(c *Config) any { return &c.Seed }, usage: "seed of the adapter init and data order"},
	{key: "clip", flag: "clip", path: true, hash: hashOmit, field: func(c *Config) any { return &c.Vision.CLIP },
		usage: "vision tower for multimodal runs: dinov2-s14 (the pinned DINOv2 ViT-S/14, installed on demand), a DINOv2 .onnx, a Hugging Face CLIP safetensors folder, or random (random weights)"},
	{key: "visual_hidden", flag: "visual-hidden", hash: hashOmit, rng: atLeast(0), field: func(c *Config) any { return &c.Vision.Projection.Hidden },
		usage: "hidden width of the visual projection MLP (0: sized to ≈0.6M parameters, the paper's)"},
	{key: "visual_depth", flag: "visual-depth", hash: hashOmit, rng: atLeast(0), field: func(c *Config) any { return &c.Vision.Projection.Depth },
		usage: "linear layers of the visual projection (0: 2)"},
	{key: "clip_layers", flag: "clip-layers", hash: hashOmit, field: func(c *Config) any { return &c.Vision.Layers },
		value: func(c *Config, _ *flagScratch) flag.Value { return intList{&c.Vision.Layers} },
		usage: "CLIP layers for multi-scale features, e.g. 8,16,24; empty: 3 evenly spaced"},
	{key: "epochs", flag: "epochs", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Train.Epochs },
		usage: "training epochs, fractional allowed (0.5: the first half of the first epoch; 0: evaluate the initial adapter; with zero-init gates that is the pretrained model, zero-shot)"},
	{key: "warmup_epochs", flag: "warmup", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Train.WarmupEpochs }, usage: "warmup epochs"},
	{key: "batch", flag: "batch", hash: hashAlways, rng: atLeast(1), field: func(c *Config) any { return &c.Train.BatchSize }, usage: "examples per micro-batch"},
	{key: "accum", flag: "accum", hash: hashAlways, rng: atLeast(1), field: func(c *Config) any { return &c.Train.AccumSteps }, usage: "micro-batches per optimizer step"},
	{key: "base_lr", flag: "lr", hash: hashAlways, rng: above(0), field: func(c *Config) any { return &c.Train.BaseLR },
		usage: "base learning rate (scaled by effective batch / 256)"},
	{key: "min_lr", flag: "min-lr", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Train.MinLR },
		usage: "final learning rate of the cosine schedule"},
	{key: "weight_decay", flag: "wd", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Train.WeightDecay },
		usage: "weight decay (prompts and projection weights)"},
	{key: "clip_norm", flag: "clip-norm", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Train.ClipNorm },
		usage: "gradient clipping by global norm (0: off)"},
	{key: "max_len", flag: "max-len", hash: hashAlways, rng: atLeast(2), field: func(c *Config) any { return &c.Train.MaxLen },
		usage: "maximum tokens per example (the context is truncated first)"},
	{key: "prompt_format", flag: "format", hash: hashAlways, field: func(c *Config) any { return &c.Data.Format },
		value: func(c *Config, _ *flagScratch) flag.Value {
			return parsedFlag[scienceqa.Format]{&c.Data.Format, scienceqa.ParseFormat}
		},
		usage: formatHelp()},
	{key: "no_eos_target", flag: "no-eos-target", hash: hashOmit, field: func(c *Config) any { return &c.Data.NoEOSTarget },
		usage: "do not train on the EOS after the answer (for models whose EOS was never trained)"},
	{key: "checkpoint_every", flag: "checkpoint-every", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Train.CheckpointEvery },
		usage: "optimizer steps between checkpoints (and every epoch end; 0: epoch ends only)"},
	{key: "eval_mode", flag: "eval", hash: hashAlways, field: func(c *Config) any { return &c.Eval.Mode },
		usage: evalHelp()},
	{key: "fallback", flag: "fallback", hash: hashAlways, field: func(c *Config) any { return &c.Eval.Fallback },
		value: func(c *Config, _ *flagScratch) flag.Value { return textFlag{&c.Eval.Fallback} },
		usage: "unparsable generations: random (official, seeded) or wrong"},
	{key: "max_new_tokens", flag: "max-new", hash: hashAlways, rng: atLeast(0), field: func(c *Config) any { return &c.Eval.MaxNew },
		usage: "generated tokens per answer"},
	{key: "eval_batch", flag: "eval-batch", hash: hashAlways, rng: atLeast(1), field: func(c *Config) any { return &c.Eval.Batch },
		usage: "evaluation batch size"},
	legacyConstant("run_id"),
	legacyConstant("backend"),
	// Added after the first committed runs: out of the hash at the value those runs had implicitly.
	{key: "target", flag: "target", hash: hashOmit, omit: []any{scienceqa.TargetLetter}, field: func(c *Config) any { return &c.Data.Target },
		value: func(c *Config, _ *flagScratch) flag.Value { return textFlag{&c.Data.Target} },
		usage: "answer in the training sequences: letter, letter-text or cloze (letter-text: \"The answer is B: <choice text>.\"; cloze: the cloze prompt without options, then the choice text)"},
	{key: "beta1", flag: "beta1", hash: hashOmit, omit: []any{0.9}, rng: unit(), field: func(c *Config) any { return &c.Train.Beta1 },
		usage: "AdamW β1"},
	{key: "beta2", flag: "beta2", hash: hashOmit, omit: []any{0.95}, rng: unit(), field: func(c *Config) any { return &c.Train.Beta2 },
		usage: "AdamW β2"},
	{key: "eps", flag: "adam-eps", hash: hashOmit, omit: []any{1e-8}, rng: above(0), field: func(c *Config) any { return &c.Train.Eps },
		usage: "AdamW ε"},
	{key: "pad_multiple", flag: "pad-multiple", hash: hashOmit, omit: []any{32, 0}, rng: atLeast(1), field: func(c *Config) any { return &c.Train.PadMultiple },
		usage: "training sequences are padded to a multiple of this (fewer compiled shapes)"},
	{key: "adapter", flag: "adapter-version", hash: hashOmit, omit: []any{"", "v1"}, field: func(c *Config) any { return &c.Adapter.Version },
		value: func(c *Config, _ *flagScratch) flag.Value {
			return parsedFlag[adapter.Version]{&c.Adapter.Version, oneOf[adapter.Version]("v1", adapter.V2)}
		},
		usage: "adapter version: v1 (prompts and gates) or v2 (also a bias and scale on every linear layer and trainable RMSNorm weights)"},
	{key: "fusion", flag: "fusion", hash: hashOmit, omit: []any{"", "all"}, field: func(c *Config) any { return &c.Adapter.Fusion },
		usage: "adapted layers that receive the image token: all (v1), first (v2's early fusion) or a count N from the lowest adapted layer"},
	// Recorded, not hashed: they change no trained result.
	{key: "answer_head", flag: "answer-head", field: func(c *Config) any { return &c.Train.AnswerHead },
		usage: "apply the LM head only at the answer positions in training (same loss to float rounding, faster on large vocabularies)"},
	{key: "length_buckets", flag: "length-buckets", rng: atLeast(0), field: func(c *Config) any { return &c.Train.LengthBuckets },
		usage: "pad training batches to at most this many lengths chosen from the data (0: each batch to its longest, rounded up to -pad-multiple); same losses to float rounding, fewer compiles"},
	{key: "remat", flag: "remat", field: func(c *Config) any { return &c.Train.Remat },
		usage: "recompute each layer's activations in the backward pass (less memory, one more forward per step; same gradients to float rounding)"},
	{key: "zero_shot", flag: "zero-shot", field: func(c *Config) any { return &c.Eval.ZeroShot },
		usage: "also score the pretrained model (no adapter) on the same problems, as a baseline row (measured once per inputs, cached)"},
	// Filled from other settings when the run starts (adapterConfig, trainConfig, the vision tower).
	{derived: true, field: func(c *Config) any { return &c.Adapter.Seed }},
	{derived: true, field: func(c *Config) any { return &c.Adapter.Visual }},
	{derived: true, field: func(c *Config) any { return &c.Train.Seed }},
	{derived: true, field: func(c *Config) any { return &c.Vision.Projection.Scales }},
	{derived: true, field: func(c *Config) any { return &c.Vision.Projection.FeatureDim }},
}

// name is how errors name a setting: its flag, else its key.
func (s setting) name() string {
	if s.flag != "" {
		return "-" + s.flag
	}
	return s.key
}

// bindSettings registers every setting that has a flag on fs, bound to c's fields, with c's values as defaults.
func bindSettings(fs *flag.FlagSet, c *Config) {
	scratch := &flagScratch{}
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		if s.value != nil {
			fs.Var(s.value(c, scratch), s.flag, s.usage)
			continue
		}
		switch p := s.field(c).(type) {
		case *string:
			fs.StringVar(p, s.flag, *p, s.usage)
		case *int:
			fs.IntVar(p, s.flag, *p, s.usage)
		case *uint64:
			fs.Uint64Var(p, s.flag, *p, s.usage)
		case *float64:
			fs.Float64Var(p, s.flag, *p, s.usage)
		case *bool:
			fs.BoolVar(p, s.flag, *p, s.usage)
		case flag.Value:
			fs.Var(p, s.flag, s.usage)
		default:
			panic(fmt.Sprintf("pipeline: setting %s: no flag binding for %T", s.flag, p)) // a declaration bug, caught by the tests
		}
	}
}

// checkRanges reports every number outside its declared range, and every non-finite float, naming the flag.
func checkRanges(c *Config) []error {
	var errs []error
	for _, s := range settings {
		if s.field == nil || s.derived {
			continue
		}
		var x float64
		switch p := s.field(c).(type) {
		case *float64:
			x = *p
			if math.IsNaN(x) || math.IsInf(x, 0) {
				errs = append(errs, fmt.Errorf("%s %g: must be finite", s.name(), x))
				continue
			}
		case *int:
			x = float64(*p)
		default:
			continue
		}
		if s.rng != nil && !s.rng.holds(x) {
			errs = append(errs, fmt.Errorf("%s %g: must be %s", s.name(), x, s.rng))
		}
	}
	return errs
}

// flatValue is a setting's value in the flat form: a list of ints is "8,16,24", a string type its string, an enum
// written by name (scienceqa.Target) its name.
func flatValue(v reflect.Value) any {
	switch {
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Int:
		return formatInts(v.Interface().([]int))
	case v.Kind() == reflect.String:
		return v.String()
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	return v.Interface()
}

// omitted reports whether a hashOmit setting's value stays out of the hash.
func (s setting) omitted(v reflect.Value, flat any) bool {
	if len(s.omit) == 0 {
		return v.IsZero() || reflect.ValueOf(flat).IsZero()
	}
	for _, o := range s.omit {
		if ov := reflect.ValueOf(o); ov.Kind() == v.Kind() || ov.CanConvert(v.Type()) {
			if reflect.DeepEqual(flat, flatValue(ov.Convert(v.Type()))) {
				return true
			}
		}
	}
	return false
}

// keyValue is one hashed setting.
type keyValue struct {
	key   string
	value any
	path  bool
}

// hashed returns the settings that make the run id, in the declared order, with paths relative to the assets.
func (c Config) hashed() []keyValue {
	var kvs []keyValue
	for _, s := range settings {
		if s.hash == hashNever || s.derived {
			continue
		}
		if s.field == nil {
			kvs = append(kvs, keyValue{key: s.key, value: ""})
			continue
		}
		v := reflect.ValueOf(s.field(&c)).Elem()
		flat := flatValue(v)
		if s.hash == hashOmit && s.omitted(v, flat) {
			continue
		}
		if s.path {
			flat = assetRelative(flat.(string))
		}
		kvs = append(kvs, keyValue{key: s.key, value: flat, path: s.path})
	}
	return kvs
}

// encodeHashed is the JSON object of the hashed settings in their order: byte for byte what json.Marshal wrote for
// the flat record the committed runs were hashed with.
func encodeHashed(kvs []keyValue) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range kvs {
		v, err := json.Marshal(kv.value)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", kv.key, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// comparedSettings are the settings compared when a run folder is resumed: the hashed ones, without input paths
// (their content digests are compared instead) unless the input is "random" (which has no file).
func (c Config) comparedSettings() map[string]any {
	m := map[string]any{}
	for _, kv := range c.hashed() {
		if kv.path && kv.value != "random" {
			continue
		}
		m[kv.key] = kv.value
	}
	return m
}

// readFlat reads the flat form of a config (config.json and summary.json before the nested form). A setting the
// file lacks keeps the value it had implicitly then: its first omit value, else zero.
func readFlat(data []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, err
	}
	var c Config
	var errs []error
	for _, s := range settings {
		if s.field == nil || s.derived || s.key == "" {
			continue
		}
		p := s.field(&c)
		v, ok := raw[s.key]
		if !ok {
			if len(s.omit) > 0 {
				dst := reflect.ValueOf(p).Elem()
				dst.Set(reflect.ValueOf(s.omit[0]).Convert(dst.Type()))
			}
			continue
		}
		var err error
		if l, isList := p.(*[]int); isList {
			var str string
			if err = json.Unmarshal(v, &str); err == nil {
				*l, err = parseInts(str)
			}
		} else {
			err = json.Unmarshal(v, p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.key, err))
		}
	}
	return c, errors.Join(errs...)
}
