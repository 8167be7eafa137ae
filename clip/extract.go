package clip

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// Extractor turns images into multi-scale features: cache lookups first, then decode + preprocess of the misses
// on all cores and encoding in fixed-size batches (the last one zero-padded, so one compiled graph serves all).
type Extractor struct {
	Encoder    *Encoder
	Preprocess Preprocess
	// Cache may be nil (no caching).
	Cache *Cache
	// BatchSize is the number of images per forward pass (default 16).
	BatchSize int
	// Workers decode and preprocess in parallel (default GOMAXPROCS).
	Workers int
	// Progress, when set, is called after each image is resolved (hit, computed or failed).
	Progress func(done, total int)
	// Stats counts what the last Features call did.
	Stats ExtractStats
	// Warn receives a warning for each corrupt cache entry found (naming the entry and the image; the features
	// are then recomputed and the entry rewritten); nil is os.Stderr.
	Warn io.Writer
}

// ExtractStats counts images by outcome.
type ExtractStats struct {
	Hits, Computed, Corrupt, Failed int
}

// NewExtractor makes an extractor using the model's preprocessing; cacheRoot "" disables the cache.
func NewExtractor(e *Encoder, cacheRoot string) (*Extractor, error) {
	x := &Extractor{Encoder: e, Preprocess: e.Model.Preprocess, BatchSize: 16}
	if err := x.Preprocess.Validate(); err != nil {
		return nil, err
	}
	if x.Preprocess.CropSize != e.Model.Config.ImageSize {
		return nil, fmt.Errorf("clip extractor: crop size %d differs from the model's image size %d",
			x.Preprocess.CropSize, e.Model.Config.ImageSize)
	}
	if cacheRoot != "" {
		c, err := OpenCache(cacheRoot, KeyFor(e, x.Preprocess))
		if err != nil {
			return nil, err
		}
		x.Cache = c
	}
	return x, nil
}

type pendingImage struct {
	index  int
	key    string
	pixels []float32
}

// Features returns the features [M·D] (row-major [M, D]) of every image, computing each once: cached ones are
// read, the others computed and stored. When some images fail (unreadable, not an image, truncated) the others'
// features are still returned and the error is a *BatchError naming each failed image; other errors (backend,
// cache writes) abort.
func (x *Extractor) Features(images []ImageSource) ([][]float32, error) {
	x.Stats = ExtractStats{}
	bs := x.BatchSize
	if bs <= 0 {
		bs = 16
	}
	workers := x.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([][]float32, len(images))
	var failed []*ImageError
	done := 0
	report := func(n int) {
		done += n
		if x.Progress != nil {
			x.Progress(done, len(images))
		}
	}
	var pending []pendingImage
	flush := func(all bool) error {
		for len(pending) >= bs || (all && len(pending) > 0) {
			n := min(bs, len(pending))
			batch := make([][]float32, bs)
			for i := range batch {
				if i < n {
					batch[i] = pending[i].pixels
				} else {
					batch[i] = make([]float32, x.Preprocess.NumValues()) // padding, discarded
				}
			}
			feats, err := x.Encoder.Encode(batch)
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				p := pending[i]
				out[p.index] = feats[i]
				if x.Cache != nil {
					if err := x.Cache.Put(p.key, feats[i]); err != nil {
						return err
					}
				}
			}
			x.Stats.Computed += n
			report(n)
			pending = pending[n:]
		}
		return nil
	}

	// Resolve images in windows of bs: read, hash, look up and (on a miss) preprocess in parallel.
	type result struct {
		key     string
		feat    []float32
		pixels  []float32
		err     error
		bad     bool // the cache entry was corrupt
		corrupt error
	}
	for start := 0; start < len(images); start += bs {
		end := min(start+bs, len(images))
		res := make([]result, end-start)
		var wg sync.WaitGroup
		next := make(chan int)
		var cacheErr error
		var mu sync.Mutex
		for w := 0; w < min(workers, end-start); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					r := &res[i-start]
					data, err := images[i].bytes()
					if err != nil {
						r.err = err
						continue
					}
					r.key = ImageKey(data)
					if x.Cache != nil {
						feat, ok, err := x.Cache.Get(r.key)
						var ce *CorruptError
						switch {
						case errors.As(err, &ce):
							r.bad, r.corrupt = true, ce
						case err != nil:
							mu.Lock()
							cacheErr = err
							mu.Unlock()
							continue
						case ok:
							r.feat = feat
							continue
						}
					}
					img, err := DecodeRGBLimit(data, x.Preprocess.MaxPixels)
					if err != nil {
						r.err = fmt.Errorf("decoding: %w", err)
						continue
					}
					r.pixels, r.err = x.Preprocess.Apply(img, nil)
				}
			}()
		}
		for i := start; i < end; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		if cacheErr != nil {
			return out, cacheErr
		}
		resolved := 0
		for j, r := range res {
			i := start + j
			if r.bad {
				x.Stats.Corrupt++
				w := x.Warn
				if w == nil {
					w = os.Stderr
				}
				fmt.Fprintf(w, "warning: image %s: %v; recomputing its features\n", images[i].Label(), r.corrupt)
			}
			switch {
			case r.err != nil:
				failed = append(failed, &ImageError{Index: i, Name: images[i].Label(), Err: r.err})
				x.Stats.Failed++
				resolved++
			case r.feat != nil:
				out[i] = r.feat
				x.Stats.Hits++
				resolved++
			default:
				pending = append(pending, pendingImage{index: i, key: r.key, pixels: r.pixels})
			}
		}
		report(resolved)
		if err := flush(false); err != nil {
			return out, err
		}
	}
	if err := flush(true); err != nil {
		return out, err
	}
	if len(failed) > 0 {
		return out, &BatchError{Failed: failed}
	}
	return out, nil
}
