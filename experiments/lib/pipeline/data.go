package pipeline

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/adapterlab/llama-adapter/clip"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/train"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/schollz/progressbar/v3"
)

// runData is a run's problems.
type runData struct {
	train, eval []*scienceqa.Problem
	describe    string
	// skippedImages are the pids whose image did not decode (-skip-bad-images), set by imageFeatures.
	skippedImages []string
	// vision names the vision tower of a multimodal run (set by imageFeatures).
	vision string
}

// loadData reads the problems (official layout or parquet) and picks the training and evaluation problems.
func loadData(cfg Config) (*runData, error) {
	// scienceqa.Open detects the layout (official, <split>-*.parquet, a Hugging Face snapshot's data/*.parquet, one
	// .parquet file); -problems and -splits override what it finds.
	// A text-only run reads no image, so it needs none of the files (the references still set the IMG category).
	src, err := scienceqa.Open(cfg.Data.Dir, scienceqa.OpenOptions{Problems: cfg.Data.ProblemsFile, Splits: cfg.Data.SplitsFile,
		NoImageCheck: cfg.Vision.Modality != Multimodal})
	if err != nil {
		return nil, fmt.Errorf("ScienceQA data (-data %s): %w", cfg.Data.Dir, err)
	}
	if !cfg.Data.Captions {
		src.Captions = ""
	} else if src.Captions == "" {
		return nil, fmt.Errorf("-captions: no captions.json for %s", src)
	}
	ds, err := src.Load()
	if err != nil {
		return nil, err
	}
	d := &runData{}
	if cfg.Data.TrainSplit != "" {
		if d.train, _, err = ds.Split(cfg.Data.TrainSplit); err != nil {
			return nil, err
		}
		if d.eval, _, err = ds.Split(cfg.Data.EvalSplit); err != nil {
			return nil, err
		}
		d.describe = fmt.Sprintf("train on split %s, evaluate on split %s; %s", cfg.Data.TrainSplit, cfg.Data.EvalSplit, src)
	} else {
		if d.train, d.eval, err = scienceqa.TrainEval(ds.Problems, cfg.Data.Folds, cfg.Data.FoldSeed, cfg.Data.EvalFold); err != nil {
			return nil, err
		}
		d.describe = fmt.Sprintf("%d-fold split (seed %d) of %d problems: evaluate on fold %d, train on the others; %s", cfg.Data.Folds, cfg.Data.FoldSeed, len(ds.Problems), cfg.Data.EvalFold, src)
	}
	if cfg.Data.TrainLimit > 0 && len(d.train) > cfg.Data.TrainLimit {
		d.train = d.train[:cfg.Data.TrainLimit]
	}
	if cfg.Data.EvalLimit > 0 && len(d.eval) > cfg.Data.EvalLimit {
		d.eval = d.eval[:cfg.Data.EvalLimit]
	}
	if len(d.train) == 0 || len(d.eval) == 0 {
		return nil, fmt.Errorf("no problems to train on (%d) or to evaluate (%d)", len(d.train), len(d.eval))
	}
	return d, nil
}

// runExamples are the tokenized training problems and what the evaluation protocols read (each protocol
// tokenizes the evaluation problems its own way, see experiments/lib/evaluate).
type runExamples struct {
	// skipped counts training problems too long for MaxLen even without context (left out of training).
	skipped   int
	train     []train.Example
	evalTrain []train.Example // the evaluation problems with their answers, for the validation loss
	evalPIDs  []string
	// trunc counts the training problems whose context was cut to fit MaxLen (summary.json "truncation").
	trunc scienceqa.Truncation
	// features are the image features by pid (nil: a text-only run).
	features map[string][]float32
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// buildExamples tokenizes the training sequences (prompt + target + EOS, loss on the target) of the training and
// evaluation problems.
func buildExamples(cfg Config, tok tokenizer.Tokenizer, d *runData, feats map[string][]float32) (*runExamples, error) {
	po := scienceqa.PromptOptions{UseCaption: cfg.Data.Captions, Target: cfg.Data.Target}
	maxLen := cfg.Train.MaxLen
	ex := &runExamples{features: feats, trunc: scienceqa.Truncation{MaxLen: maxLen}}
	var lastCut bool // whether toTrain's last call cut the context
	toTrain := func(p *scienceqa.Problem) (train.Example, error) {
		e, err := scienceqa.Tokenize(tok, p, cfg.Data.Format, scienceqa.TokenOptions{PromptOptions: po, MaxLen: maxLen})
		lastCut = err == nil && e.ContextCut()
		if err != nil {
			return train.Example{}, err
		}
		if n := len(e.IDs); cfg.Data.NoEOSTarget && n > 0 && e.IDs[n-1] == tok.EOS() {
			e.IDs, e.Mask = e.IDs[:n-1], e.Mask[:n-1]
		}
		return train.Example{ID: p.PID, Tokens: int32s(e.IDs), LossMask: e.Mask, Features: feats[p.PID]}, nil
	}
	for _, p := range d.train {
		e, err := toTrain(p)
		ex.trunc.Train.Note(p.PID, lastCut, errors.Is(err, scienceqa.ErrTooLong))
		if errors.Is(err, scienceqa.ErrTooLong) {
			ex.skipped++
			continue
		} else if err != nil {
			return nil, err
		}
		ex.train = append(ex.train, e)
	}
	for _, p := range d.eval {
		e, err := toTrain(p)
		// Counted on the evaluation problem's training-format sequence (the validation loss's); each protocol's
		// prompt is shorter than it (no answer), so a protocol cuts no more often than this.
		ex.trunc.Eval.Note(p.PID, lastCut, errors.Is(err, scienceqa.ErrTooLong))
		if errors.Is(err, scienceqa.ErrTooLong) {
			// The validation loss covers the problems that fit; accuracy covers all of them.
		} else if err != nil {
			return nil, err
		} else {
			ex.evalTrain = append(ex.evalTrain, e)
		}
		ex.evalPIDs = append(ex.evalPIDs, p.PID)
	}
	return ex, nil
}

// randomCLIP is the encoder used for local multimodal runs when no pretrained CLIP is available (-clip random):
// a small ViT with random weights. Its features carry image information only by chance; tables label such runs.
func randomCLIP() clip.Config {
	c := clip.ConfigViTL14()
	c.ImageSize, c.PatchSize, c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.ProjectionDim = 224, 32, 128, 256, 6, 4, 64
	return c
}

// imageFeatures computes (or reads from the cache) the multi-scale features of every problem with an image;
// problems without one get no entry (the adapter then adds a zero-feature token: the projection's bias path).
func imageFeatures(cfg Config, b compute.Backend, d *runData, out io.Writer) (map[string][]float32, int, int, error) {
	x, err := featureExtractor(cfg, b, d, out)
	if err != nil {
		return nil, 0, 0, err
	}
	srcs, pids := imageSources(d)
	bar := progressbar.NewOptions(len(srcs), progressbar.OptionSetWriter(out), progressbar.OptionSetDescription("image features"),
		progressbar.OptionShowCount(), progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }))
	x.Progress = func(done, total int) { _ = bar.Set(done) }
	fs, err := x.Features(srcs)
	var batchErr *clip.BatchError
	if err != nil && !errors.As(err, &batchErr) {
		return nil, 0, 0, err
	}
	if batchErr != nil && !cfg.SkipBadImages {
		// Like a missing image: a problem counted as IMG must not silently run without its image.
		return nil, 0, 0, fmt.Errorf("%w (-skip-bad-images runs such problems without image features and records them)", batchErr)
	}
	feats := map[string][]float32{}
	d.skippedImages = nil
	for i, f := range fs {
		if f != nil {
			feats[pids[i]] = f
		} else {
			d.skippedImages = append(d.skippedImages, pids[i])
		}
	}
	if batchErr != nil {
		fmt.Fprintf(out, "warning: -skip-bad-images: %d images did not decode, their problems run without image features: %v\n",
			len(batchErr.Failed), batchErr)
	}
	enc := x.Encoder
	fmt.Fprintf(out, "image features: %d images (%d cached, %d computed, %d failed), %d layers × %d\n",
		len(srcs), x.Stats.Hits, x.Stats.Computed, x.Stats.Failed, len(enc.Options.Layers), enc.Dim()/len(enc.Options.Layers))
	scales := len(enc.Options.Layers)
	dim := enc.Dim() / scales
	// Problems without an image (or whose image failed) get zero features, so every batch has features.
	for _, ps := range [][]*scienceqa.Problem{d.train, d.eval} {
		for _, p := range ps {
			if _, ok := feats[p.PID]; !ok {
				feats[p.PID] = make([]float32, scales*dim)
			}
		}
	}
	return feats, scales, dim, nil
}

// featureExtractor opens cfg's vision tower (recording its name in d.vision) and returns its cached feature
// extractor over cfg's layers, caching under -feature-cache (default: features/ beside the runs folder).
func featureExtractor(cfg Config, b compute.Backend, d *runData, out io.Writer) (*clip.Extractor, error) {
	m, err := openVisionTower(cfg, out)
	if err != nil {
		return nil, err
	}
	d.vision = visionName(cfg, m)
	fmt.Fprintf(out, "vision tower: %s\n", d.vision)
	o := clip.FeatureOptions{}
	o.Layers = cfg.Vision.Layers
	enc, err := m.NewEncoder(b, o)
	if err != nil {
		return nil, err
	}
	cacheDir := cfg.FeatureCache
	if cacheDir == "" {
		cacheDir = filepath.Join(filepath.Dir(filepath.Clean(cfg.RunsDir)), "features")
	}
	x, err := clip.NewExtractor(enc, cacheDir)
	if err != nil {
		return nil, err
	}
	x.Preprocess.MaxPixels, x.Warn = cfg.MaxPixels, out
	return x, nil
}

// imageSources lists the images of the run's training and evaluation problems, with the pid of each.
func imageSources(d *runData) ([]clip.ImageSource, []string) {
	var srcs []clip.ImageSource
	var pids []string
	for _, ps := range [][]*scienceqa.Problem{d.train, d.eval} {
		for _, p := range ps {
			if !p.HasImage() {
				continue
			}
			srcs = append(srcs, clip.ImageSource{Name: fmt.Sprintf("pid %s (%s)", p.PID, p.Image.Path), Path: p.Image.Path, Data: p.Image.Bytes})
			pids = append(pids, p.PID)
		}
	}
	return srcs, pids
}

// openVisionTower loads cfg's vision tower: a random-weight ViT seeded by cfg.Seed for "random", else the model
// -clip names.
func openVisionTower(cfg Config, out io.Writer) (*clip.Model, error) {
	if cfg.Vision.CLIP == "random" {
		return clip.RandomWeights(randomCLIP(), cfg.Seed, dtypes.Float32)
	}
	// A pinned name (dinov2-s14) is installed on demand; .onnx files load as DINOv2, folders as HF CLIP.
	path, err := assets.EnsureModel(cfg.Vision.CLIP, cfg.Install, out)
	if err != nil {
		return nil, err
	}
	return clip.LoadVision(path, dtypes.Float32)
}

// visionName names the vision tower for logs and tables: the model's own name, or that of the random-weight ViT.
func visionName(cfg Config, m *clip.Model) string {
	if cfg.Vision.CLIP == "random" {
		return "random-weight ViT (not pretrained)"
	}
	if m != nil && m.Name != "" {
		return m.Name
	}
	return cfg.Vision.CLIP
}
