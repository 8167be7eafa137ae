// Package precompute fills the CLIP feature cache for a ScienceQA data set: it finds the problem images (through
// datasets/scienceqa's readers for the Hugging Face parquet layout or an official problems.json, else by walking
// images/<split>/<pid>/image.png), runs them through a clip.Extractor in chunks with a progress bar, and reports
// what was read, computed and rejected. The `features` subcommand of experiments/scienceqa is a thin flag
// wrapper around Run.
package precompute

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/clip"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/gomlx/compute/dtypes"
	"github.com/schollz/progressbar/v3"
)

// Image is one problem image found in a data set: a file (Path) or, from parquet, its bytes (Data).
type Image struct {
	Split, PID, Path string
	Data             []byte
}

// Label names the image in logs and errors: its path, or <split>/<pid> for embedded bytes.
func (im Image) Label() string {
	if im.Path != "" && im.Data == nil {
		return im.Path
	}
	return im.Split + "/" + im.PID
}

// LoadImages lists the images of the data set in dataDir (layout detected by scienceqa.Open), and says how it found them:
//   - "parquet": <split>-*.parquet files in dataDir (or dataDir/data), read with scienceqa.LoadParquet;
//   - "problems.json": the official layout with problems.json (+ pid_splits.json), read with
//     scienceqa.LoadOfficial (invalid records are skipped, as they would be for training);
//   - "images/": otherwise, every images/<split>/<pid>/image.png (FindImages), e.g. the test-only data here,
//     whose problems file is problems_test.json.
func LoadImages(dataDir string, splits []string) ([]Image, string, error) {
	want := map[string]bool{}
	for _, s := range splits {
		want[s] = true
	}
	var ds *scienceqa.Dataset
	var how string
	// scienceqa.Open is the one layout detector; a folder it cannot read as one layout is walked for images/.
	src, err := scienceqa.Open(dataDir, scienceqa.OpenOptions{Lenient: true})
	switch {
	case errors.Is(err, scienceqa.ErrNoData) || errors.Is(err, scienceqa.ErrAmbiguous):
	case err != nil:
		return nil, "", err
	default:
		if ds, err = src.Load(); err != nil {
			return nil, "", err
		}
		how = "parquet"
		if src.Layout == scienceqa.LayoutOfficial {
			how = filepath.Base(src.Problems)
		}
	}
	if ds == nil {
		ims, err := FindImages(dataDir, splits)
		return ims, "images/", err
	}
	var out []Image
	for _, p := range ds.Problems {
		if !p.HasImage() || (len(want) > 0 && !want[p.Split]) {
			continue
		}
		out = append(out, Image{Split: p.Split, PID: p.PID, Path: p.Image.Path, Data: p.Image.Bytes})
	}
	if len(out) == 0 {
		return nil, how, fmt.Errorf("scienceqa %s (%s): no problem has an image", dataDir, how)
	}
	return out, how, nil
}

// FindImages walks dataDir/images/<split>/<pid>/image.png (the official ScienceQA layout) and returns the
// images sorted by split then pid. splits, when non-empty, restricts the walk.
func FindImages(dataDir string, splits []string) ([]Image, error) {
	root := filepath.Join(dataDir, "images")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("scienceqa images: %w (want %s/<split>/<pid>/image.png)", err, root)
	}
	want := map[string]bool{}
	for _, s := range splits {
		want[s] = true
	}
	var out []Image
	for _, e := range entries {
		if !e.IsDir() || (len(want) > 0 && !want[e.Name()]) {
			continue
		}
		split := e.Name()
		pids, err := os.ReadDir(filepath.Join(root, split))
		if err != nil {
			return nil, fmt.Errorf("scienceqa images: %w", err)
		}
		for _, p := range pids {
			if !p.IsDir() {
				continue
			}
			path := filepath.Join(root, split, p.Name(), "image.png")
			if _, err := os.Stat(path); err == nil {
				out = append(out, Image{Split: split, PID: p.Name(), Path: path})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Split != out[j].Split {
			return out[i].Split < out[j].Split
		}
		return out[i].PID < out[j].PID
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("scienceqa images: no %s/<split>/<pid>/image.png found", root)
	}
	return out, nil
}

// Options of Run.
type Options struct {
	Data   string   // data set folder (holding images/)
	Splits []string // restrict to these splits (empty: all)
	// CLIP is the vision tower: a Hugging Face CLIP checkpoint (folder or .safetensors), a DINOv2 .onnx file, or a
	// pinned model name ("dinov2-s14", installed on demand unless $SQA_NO_INSTALL is set); see clip.LoadVision.
	CLIP  string
	Cache string // cache root ("" = DefaultCacheDir())
	clip.FeatureOptions
	Batch int          // images per forward pass
	DType dtypes.DType // weights dtype (float32 default; bfloat16 halves memory, changes the cache key)
	// Chunk is how many images are resolved per Extractor call (bounds memory; default 512).
	Chunk int
	// Progress, when false, hides the bar (tests).
	Progress bool
}

// DefaultCacheDir is <user cache dir>/llama-adapter/clip-features (outside the repository).
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "llama-adapter", "clip-features")
}

// Summary is what Run did.
type Summary struct {
	Images   int
	Found    string // how the images were found (see LoadImages)
	Stats    clip.ExtractStats
	Failed   []*clip.ImageError
	CacheDir string
	Elapsed  time.Duration
}

// Run computes and caches the features of every image of the data set. Bad images are listed in the summary
// (and the returned error), the others are still cached.
func Run(o Options, log io.Writer) (Summary, error) {
	var sum Summary
	start := time.Now()
	if o.Cache == "" {
		o.Cache = DefaultCacheDir()
	}
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.Chunk <= 0 {
		o.Chunk = 512
	}
	if o.DType == dtypes.InvalidDType {
		o.DType = dtypes.Float32
	}
	images, how, err := LoadImages(o.Data, o.Splits)
	if err != nil {
		return sum, err
	}
	sum.Found = how
	sum.Images = len(images)
	path, err := assets.EnsureModel(o.CLIP, !assets.NoInstall(), log)
	if err != nil {
		return sum, err
	}
	m, err := clip.LoadVision(path, o.DType)
	if err != nil {
		return sum, err
	}
	b, err := device.Shared()
	if err != nil {
		return sum, err
	}
	enc, err := m.NewEncoder(b, o.FeatureOptions)
	if err != nil {
		return sum, err
	}
	x, err := clip.NewExtractor(enc, o.Cache)
	if err != nil {
		return sum, err
	}
	x.BatchSize = o.Batch
	sum.CacheDir = x.Cache.Dir
	fmt.Fprintf(log, "clip features: %d images in %s (from %s); model %s = %s (%s, %d layers, C=%d); %s; cache %s\n",
		len(images), o.Data, how, m.Name, path, o.DType, m.Config.NumLayers, m.Config.HiddenSize, enc.Options, x.Cache.Dir)
	bar := progressbar.NewOptions(len(images), progressbar.OptionSetWriter(log),
		progressbar.OptionSetDescription("clip features"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("img"), progressbar.OptionSetVisibility(o.Progress),
		progressbar.OptionThrottle(200*time.Millisecond))
	for s := 0; s < len(images); s += o.Chunk {
		chunk := images[s:min(s+o.Chunk, len(images))]
		srcs := make([]clip.ImageSource, len(chunk))
		for i, im := range chunk {
			srcs[i] = clip.ImageSource{Name: im.Label(), Path: im.Path, Data: im.Data}
		}
		offset := s
		x.Progress = func(done, _ int) { bar.Set(offset + done) }
		_, err := x.Features(srcs)
		var be *clip.BatchError
		if errors.As(err, &be) {
			for _, f := range be.Failed {
				f.Index += offset
				sum.Failed = append(sum.Failed, f)
			}
		} else if err != nil {
			return sum, err
		}
		sum.Stats.Hits += x.Stats.Hits
		sum.Stats.Computed += x.Stats.Computed
		sum.Stats.Corrupt += x.Stats.Corrupt
		sum.Stats.Failed += x.Stats.Failed
	}
	bar.Finish()
	sum.Elapsed = time.Since(start)
	fmt.Fprintf(log, "\nclip features: %d cached already, %d computed, %d corrupt entries recomputed, %d failed in %v\n",
		sum.Stats.Hits, sum.Stats.Computed, sum.Stats.Corrupt, sum.Stats.Failed, sum.Elapsed.Round(time.Millisecond))
	if len(sum.Failed) > 0 {
		var names []string
		for _, f := range sum.Failed {
			fmt.Fprintf(log, "  failed: %v\n", f)
			names = append(names, f.Name)
		}
		return sum, fmt.Errorf("clip features: %d of %d images failed: %s", len(sum.Failed), len(images), strings.Join(names, ", "))
	}
	return sum, nil
}
