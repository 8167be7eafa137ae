package pipeline

import (
	"fmt"
	"io"
	"time"

	"github.com/adapterlab/llama-adapter/adapter"
	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/models/device"
	"github.com/adapterlab/llama-adapter/models/llama"
	"github.com/adapterlab/llama-adapter/models/pinned"
	"github.com/adapterlab/llama-adapter/models/tokenizer"
	"github.com/gomlx/compute"
)

// session is what a run and a re-evaluation share: the backend, the tokenizer, the frozen model and the
// problems, opened once by open.
type session struct {
	cfg     Config
	backend compute.Backend
	info    device.Info
	tok     tokenizer.Tokenizer
	model   *llama.Model
	data    *runData
	// modelPath and tokPath are the resolved files (a pinned model's name becomes its installed file).
	modelPath, tokPath string
}

// close releases the backend.
func (s *session) close() {
	if s.backend != nil {
		s.backend.Finalize()
	}
}

// openBackend creates cfg's backend: the explicit -backend, or models/device's resolution.
func openBackend(cfg Config) (compute.Backend, device.Info, error) {
	if cfg.Backend == "" {
		return device.NewWithInfo()
	}
	b, err := device.NewWithConfig(cfg.Backend)
	if err != nil {
		return nil, device.Info{}, fmt.Errorf("-backend %s: %w", cfg.Backend, err)
	}
	return b, device.DescribeBackend(cfg.Backend, b), nil
}

// resolveModel turns pinned model names into their installed files (installing them when cfg.Install allows).
func resolveModel(cfg Config, out io.Writer) (modelPath, tokPath string, err error) {
	if modelPath, err = assets.EnsureModel(cfg.Model.Path, cfg.Install, out); err != nil {
		return "", "", fmt.Errorf("-model %s: %w", cfg.Model.Path, err)
	}
	if tokPath, err = assets.EnsureModel(cfg.Model.Tokenizer, cfg.Install, out); err != nil {
		return "", "", fmt.Errorf("-tokenizer %s: %w", cfg.Model.Tokenizer, err)
	}
	return modelPath, tokPath, nil
}

// open is the one setup path of Run and Evaluate: backend, tokenizer, problems and the frozen model, with a
// line on out for each (loading a large model takes a while: it says so first).
func open(cfg Config, out io.Writer) (_ *session, err error) {
	s := &session{cfg: cfg}
	defer func() {
		if err != nil {
			s.close() // the local session: a failed open returns nil
		}
	}()
	if s.backend, s.info, err = openBackend(cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "backend: %s\n", s.info)
	if s.modelPath, s.tokPath, err = resolveModel(cfg, out); err != nil {
		return nil, err
	}
	if s.tok, err = tokenizer.Load(s.tokPath); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", s.tokPath, err)
	}
	if s.data, err = loadData(cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "data: %d training and %d evaluation problems (%s)\n", len(s.data.train), len(s.data.eval), s.data.describe)
	fmt.Fprintf(out, "loading model %s (%s)…\n", s.modelPath, cfg.Model.DType)
	start := time.Now()
	if s.model, err = llama.Load(s.modelPath, cfg.Model.DType.GoMLX()); err != nil {
		return nil, fmt.Errorf("model %s: %w", s.modelPath, err)
	}
	mc := s.model.Config
	if s.tok.VocabSize() != mc.VocabSize {
		return nil, fmt.Errorf("tokenizer %s has %d tokens, model %s a vocabulary of %d", s.tokPath, s.tok.VocabSize(), s.modelPath, mc.VocabSize)
	}
	fmt.Fprintf(out, "model: %s (%s, %d layers, C=%d, %.3g M parameters) loaded in %.1fs\n", s.modelPath, s.model.Format,
		mc.NumLayers, mc.Dim, float64(mc.NumParams())/1e6, time.Since(start).Seconds())
	// What checking the inputs cost (the run record's digests, the pinned-hash checks of the model and the XLA
	// plugin): process totals, as each file is hashed once per process.
	h := pinned.Hashed()
	fmt.Fprintf(out, "input files hashed so far (sha256, each once per process): %d, %.0f MB in %.2fs\n", h.Files, float64(h.Bytes)/1e6, h.Seconds)
	return s, nil
}

// features computes (or reads from the cache) the image features of every problem and returns them with the
// visual projection's shape.
func (s *session) features(out io.Writer) (map[string][]float32, *adapter.VisualConfig, error) {
	feats, scales, dim, err := imageFeatures(s.cfg, s.backend, s.data, out)
	if err != nil {
		return nil, nil, err
	}
	v := s.cfg.Vision.Projection
	v.Scales, v.FeatureDim = scales, dim
	return feats, &v, nil
}

// examples tokenizes the problems and says how many had to be left out or shortened.
func (s *session) examples(feats map[string][]float32, out io.Writer) (*runExamples, error) {
	ex, err := buildExamples(s.cfg, s.tok, s.data, feats)
	if err != nil {
		return nil, err
	}
	if ex.skipped > 0 {
		fmt.Fprintf(out, "max length %d: %d training problems do not fit even without context and are left out\n", s.cfg.Train.MaxLen, ex.skipped)
	}
	return ex, nil
}
