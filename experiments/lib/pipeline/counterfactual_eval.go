package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/experiments/lib/evaluate"
	"github.com/adapterlab/llama-adapter/results"
)

// Image conditions of a counterfactual evaluation: each IMG problem with its own image's features, with another
// IMG problem's (ShuffledFeatures) and with zeros (ZeroFeatures).
const (
	ImageTrue     = "true"
	ImageShuffled = "shuffled"
	ImageZero     = "zero"
)

// ImageConditions lists the conditions in the order they are evaluated and reported.
var ImageConditions = []string{ImageTrue, ImageShuffled, ImageZero}

// Files a counterfactual evaluation writes into the run folder: the report (CounterfactualReport) and its table
// (Markdown).
const (
	CounterfactualFile  = "counterfactual.json"
	CounterfactualTable = "counterfactual.md"
)

// CounterfactualOptions set a counterfactual evaluation of a run folder.
type CounterfactualOptions struct {
	// FeatureCache is the image-feature cache ("": the run's default, <runs>/../features).
	FeatureCache string
	// Backend overrides the GoMLX backend ("": resolved as for runs).
	Backend string
	// EvalLimit evaluates only the first EvalLimit IMG problems of the run's evaluation set (0: all of them).
	EvalLimit int
	// Protocols is an -eval list ("": the protocols the run evaluated, its primary first).
	Protocols string
	// ShuffleSeed seeds the image permutation (0: DefaultShuffleSeed).
	ShuffleSeed uint64
	// Bootstrap sets the paired bootstrap of the differences.
	Bootstrap results.Bootstrap
	// Wait waits for another process working in the run folder instead of refusing.
	Wait bool
	// Install lets a missing pinned model be installed.
	Install bool
}

// CounterfactualProtocol is one protocol's answers under the three image conditions and their comparison.
type CounterfactualProtocol struct {
	Protocol string `json:"protocol"`
	// Accuracy is the IMG accuracy (Wilson 95 % interval) by condition.
	Accuracy map[string]results.Accuracy `json:"accuracy"`
	// TrueMinusShuffled and TrueMinusZero are the paired differences over the same problems, in points: bootstrap
	// interval over problems and exact McNemar p.
	TrueMinusShuffled results.Paired `json:"true_minus_shuffled"`
	TrueMinusZero     results.Paired `json:"true_minus_zero"`
	// Changed counts, by counterfactual condition, the problems whose choice differs from the true image's.
	Changed map[string]int `json:"changed"`
	// Reading is the verdict in words, derived from the intervals (imageReading).
	Reading string `json:"reading"`
	// RecordedSame of RecordedCompared true-image choices equal the run's recorded ones (predictions*.json); a
	// few differ where batches pad differently and a near-tie flips in float32. RecordedCompared is 0 when the
	// run did not record the protocol.
	RecordedSame     int `json:"recorded_same"`
	RecordedCompared int `json:"recorded_compared"`
	// Choices are the chosen options by condition and pid (scienceqa.Unanswered counts as wrong).
	Choices map[string]map[string]int `json:"choices"`
}

// CounterfactualReport is counterfactual.json: what was evaluated, every problem's answers and the statistics.
type CounterfactualReport struct {
	Run    string `json:"run"`
	RunID  string `json:"run_id"`
	Split  string `json:"split"`
	Vision string `json:"vision"`
	// Problems are the IMG problems evaluated (the run's evaluation order); Answers their correct options.
	Problems []string       `json:"problems"`
	Answers  map[string]int `json:"answers"`
	// Skipped are IMG problems left out because their image did not decode (-skip-bad-images runs).
	Skipped []string `json:"skipped,omitempty"`
	// ShuffleSeed seeds the permutation; ShuffleSource maps each problem to the problem whose features it had.
	ShuffleSeed   uint64                   `json:"shuffle_seed"`
	ShuffleSource map[string]string        `json:"shuffle_source"`
	Resamples     int                      `json:"bootstrap_resamples"`
	BootstrapSeed uint64                   `json:"bootstrap_seed"`
	Protocols     []CounterfactualProtocol `json:"protocols"`
	EvalSeconds   float64                  `json:"eval_seconds"`
	Backend       string                   `json:"backend"`
	Versions      results.Versions         `json:"versions"`
	Command       []string                 `json:"command,omitempty"`
}

// Counterfactual evaluates a complete multimodal run (folder dir) on the IMG problems of its evaluation set three
// times — true, shuffled and zero image features — by the run's protocols, with the run's adapter, settings and
// vision tower, and writes counterfactual.json and counterfactual.md into the folder (atomically, holding the
// folder's lock). Only the features change between the conditions: the evaluation is the run's own
// (evalEnv, evaluate.Run).
func Counterfactual(ctx context.Context, dir string, o CounterfactualOptions, out io.Writer) (rep *CounterfactualReport, err error) {
	sum, cfg, protocols, err := counterfactualRun(dir, o)
	if err != nil {
		return nil, err
	}
	lock, err := results.LockRun(ctx, dir, o.Wait, func(b *results.BusyError) { fmt.Fprintf(out, "waiting: %v\n", b) })
	if err != nil {
		return nil, err
	}
	defer func() {
		if uerr := lock.Unlock(); err == nil && uerr != nil {
			err = uerr
		}
	}()

	s, err := open(cfg, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	a, err := LoadAdapter(dir, s.model)
	if err != nil {
		return nil, fmt.Errorf("run %s: adapter: %w", dir, err)
	}
	if a.Config.Visual == nil {
		return nil, fmt.Errorf("run %s: the adapter has no visual projection", dir)
	}
	// Only the evaluation problems' images are needed: the training problems' are neither computed nor read.
	evalData := *s.data
	evalData.train = nil
	feats, scales, dim, err := imageFeatures(cfg, s.backend, &evalData, out)
	if err != nil {
		return nil, err
	}
	if want := a.Config.Visual; scales != want.Scales || dim != want.FeatureDim {
		return nil, fmt.Errorf("run %s: the adapter expects %d×%d image features; -clip %s gives %d×%d", dir,
			want.Scales, want.FeatureDim, cfg.Vision.CLIP, scales, dim)
	}
	rep = newCounterfactualReport(dir, cfg, o, &evalData, s.info.String())
	img := rep.selectProblems(s.data.eval, evalData.skippedImages, o.EvalLimit)
	byCondition, err := rep.conditions(feats)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	base, err := evalEnv(cfg, s, a, img, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	choices, err := evaluateConditions(ctx, base, protocols, byCondition, len(img), out)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	rep.EvalSeconds = time.Since(start).Seconds()
	for _, p := range protocols {
		cp, err := CounterfactualStats(p.Name(), rep.Problems, rep.Answers, choices[p.Name()], o.Bootstrap)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", dir, err)
		}
		if err := compareRecorded(dir, sum, &cp); err != nil {
			return nil, err
		}
		rep.Protocols = append(rep.Protocols, cp)
	}
	if err := results.WriteJSONAtomic(filepath.Join(dir, CounterfactualFile), rep); err != nil {
		return nil, err
	}
	if err := results.WriteFileAtomic(filepath.Join(dir, CounterfactualTable), []byte(rep.Markdown()), 0o644); err != nil {
		return nil, err
	}
	return rep, nil
}

// counterfactualRun reads a complete multimodal run's summary and config (with the options' runtime settings) and
// the protocols to evaluate (the run's list unless the options name others).
func counterfactualRun(dir string, o CounterfactualOptions) (*results.Summary, Config, []evaluate.Protocol, error) {
	sum, ok, err := RunComplete(dir)
	if err != nil {
		return nil, Config{}, nil, fmt.Errorf("run %s: %w", dir, err)
	}
	if !ok {
		return nil, Config{}, nil, fmt.Errorf("run %s is not complete (no summary.json of a finished run)", dir)
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, Config{}, nil, fmt.Errorf("run %s: %w", dir, err)
	}
	if cfg.Vision.Modality != Multimodal {
		return nil, Config{}, nil, fmt.Errorf("run %s is %s: image counterfactuals need a multimodal run", dir, cfg.Vision.Modality)
	}
	cfg.FeatureCache, cfg.Backend, cfg.Install, cfg.Devices = o.FeatureCache, o.Backend, o.Install, "1"
	protocols, err := cfg.Eval.Mode.Protocols()
	if o.Protocols != "" {
		protocols, err = evaluate.ParseList(o.Protocols)
	}
	if err != nil {
		return nil, Config{}, nil, err
	}
	return sum, cfg, protocols, nil
}

// newCounterfactualReport starts a run's report with its provenance, the shuffle seed and the bootstrap settings
// (defaults filled in).
func newCounterfactualReport(dir string, cfg Config, o CounterfactualOptions, evalData *runData, backend string) *CounterfactualReport {
	rep := &CounterfactualReport{Run: dir, RunID: cfg.RunID, Split: evalSplitName(cfg), Vision: evalData.vision,
		Answers: map[string]int{}, ShuffleSeed: o.ShuffleSeed, Backend: backend, Versions: results.CurrentVersions(),
		Command: os.Args}
	if rep.ShuffleSeed == 0 {
		rep.ShuffleSeed = DefaultShuffleSeed
	}
	rep.Resamples, rep.BootstrapSeed = o.Bootstrap.Resamples, o.Bootstrap.Seed
	if rep.Resamples <= 0 {
		rep.Resamples = results.DefaultResamples
	}
	if rep.BootstrapSeed == 0 {
		rep.BootstrapSeed = results.DefaultBootstrapSeed
	}
	return rep
}

// selectProblems keeps the evaluation set's IMG problems (the first limit of them when limit > 0), recording each
// one's answer and listing those whose image was skipped as undecodable.
func (rep *CounterfactualReport) selectProblems(eval []*scienceqa.Problem, skippedImages []string, limit int) []*scienceqa.Problem {
	skipped := map[string]bool{}
	for _, pid := range skippedImages {
		skipped[pid] = true
	}
	var img []*scienceqa.Problem
	for _, p := range eval {
		switch {
		case !p.HasImage():
		case skipped[p.PID]:
			rep.Skipped = append(rep.Skipped, p.PID)
		case limit <= 0 || len(img) < limit:
			img = append(img, p)
			rep.Problems = append(rep.Problems, p.PID)
			rep.Answers[p.PID] = p.Answer
		}
	}
	return img
}

// conditions builds the three feature maps (true, shuffled, zero) over the report's problems and records the
// shuffle's sources.
func (rep *CounterfactualReport) conditions(feats map[string][]float32) (map[string]map[string][]float32, error) {
	shuffled, source, err := ShuffledFeatures(feats, rep.Problems, rep.ShuffleSeed)
	if err != nil {
		return nil, err
	}
	zero, err := ZeroFeatures(feats, rep.Problems)
	if err != nil {
		return nil, err
	}
	rep.ShuffleSource = source
	return map[string]map[string][]float32{ImageTrue: feats, ImageShuffled: shuffled, ImageZero: zero}, nil
}

// evaluateConditions runs the protocols once per image condition and returns protocol → condition → pid → choice.
// One Env (one runner: compiled graphs are reused across the conditions); each condition a fresh copy of it, so the
// cloze pass that cloze and cloze-norm share is not carried from one condition to the next.
func evaluateConditions(ctx context.Context, base *evaluate.Env, protocols []evaluate.Protocol,
	byCondition map[string]map[string][]float32, n int, out io.Writer) (map[string]map[string]map[string]int, error) {
	choices := map[string]map[string]map[string]int{}
	for _, c := range ImageConditions {
		fmt.Fprintf(out, "image features: %s (%d IMG problems)\n", c, n)
		env := *base
		env.Features = byCondition[c]
		res, err := evaluate.Run(ctx, &env, protocols, out)
		if err != nil {
			return nil, fmt.Errorf("%s images: %w", c, err)
		}
		for _, r := range res {
			if choices[r.Protocol] == nil {
				choices[r.Protocol] = map[string]map[string]int{}
			}
			choices[r.Protocol][c] = r.Choices
		}
	}
	return choices, nil
}

// compareRecorded counts the true-image choices that equal the run's recorded choices for the protocol.
func compareRecorded(dir string, sum *results.Summary, cp *CounterfactualProtocol) error {
	if sum.Scores[cp.Protocol] == nil {
		return nil
	}
	file := predictionsFile(cp.Protocol)
	if cp.Protocol == sum.Primary {
		file = PredictionsFile
	}
	rec, err := readChoices(filepath.Join(dir, file))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", dir, err)
	}
	for pid, c := range cp.Choices[ImageTrue] {
		if r, ok := rec[pid]; ok {
			cp.RecordedCompared++
			if r == c {
				cp.RecordedSame++
			}
		}
	}
	return nil
}

// CounterfactualStats scores one protocol's choices under the three conditions (condition → pid → choice) on
// problems pids with correct options answers: each condition's accuracy with its Wilson interval, the paired
// differences true − shuffled and true − zero (bootstrap interval, exact McNemar p), how many answers each
// counterfactual changed, and the reading.
func CounterfactualStats(protocol string, pids []string, answers map[string]int, choices map[string]map[string]int, bs results.Bootstrap) (CounterfactualProtocol, error) {
	cp := CounterfactualProtocol{Protocol: protocol, Accuracy: map[string]results.Accuracy{}, Changed: map[string]int{}, Choices: choices}
	if len(pids) == 0 {
		return cp, fmt.Errorf("counterfactual %s: no problems", protocol)
	}
	correct := map[string]map[string]bool{}
	for _, c := range ImageConditions {
		ch := choices[c]
		if len(ch) != len(pids) {
			return cp, fmt.Errorf("counterfactual %s: %d choices with %s images for %d problems", protocol, len(ch), c, len(pids))
		}
		correct[c] = map[string]bool{}
		for _, pid := range pids {
			choice, ok := ch[pid]
			if !ok {
				return cp, fmt.Errorf("counterfactual %s: no choice for problem %s with %s images", protocol, pid, c)
			}
			ans, ok := answers[pid]
			if !ok {
				return cp, fmt.Errorf("counterfactual %s: no answer for problem %s", protocol, pid)
			}
			correct[c][pid] = choice == ans
			if c != ImageTrue && choice != choices[ImageTrue][pid] {
				cp.Changed[c]++
			}
		}
		acc, err := results.AccuracyOf([]map[string]bool{correct[c]}, bs)
		if err != nil {
			return cp, fmt.Errorf("counterfactual %s, %s images: %w", protocol, c, err)
		}
		cp.Accuracy[c] = acc
	}
	for _, d := range []struct {
		other string
		into  *results.Paired
	}{{ImageShuffled, &cp.TrueMinusShuffled}, {ImageZero, &cp.TrueMinusZero}} {
		st, err := results.NewStratum("", correct[ImageTrue], correct[d.other])
		if err != nil {
			return cp, err
		}
		if *d.into, err = results.PairedDifference([]results.Stratum{st}, bs); err != nil {
			return cp, fmt.Errorf("counterfactual %s, true − %s: %w", protocol, d.other, err)
		}
	}
	cp.Reading = imageReading(cp.TrueMinusShuffled, cp.TrueMinusZero, cp.Changed)
	return cp, nil
}

// imageReading says what the two differences mean. The shuffle decides whether the adapter uses the image's
// content: with the interval of true − shuffled including 0, another problem's image serves as well as the
// problem's own. The zeros then say whether the features' mere presence matters.
func imageReading(shuf, zero results.Paired, changed map[string]int) string {
	return conditionReading("shuffled", shuf, changed[ImageShuffled], [3]string{
		": the adapter ignores the image", ": the adapter ignores the image", ": the adapter uses the image",
	}, ": another problem's image does better, the image misleads the adapter") + "; " +
		conditionReading("zero", zero, changed[ImageZero], [3]string{
			"", "", ": image features help over none",
		}, ": image features hurt against none")
}

// conditionReading words one comparison of true features against a counterfactual condition: no answer changed,
// interval including 0, true better, true worse; each case's sentence ends with its tail (tails[0..2], worse).
func conditionReading(cond string, p results.Paired, changed int, tails [3]string, worse string) string {
	switch {
	case changed == 0:
		return "true = " + cond + " (no answer changed)" + tails[0]
	case !p.CI.Excludes(0):
		return "true ≈ " + cond + " (interval includes 0)" + tails[1]
	case p.CI.Lo > 0:
		return "true > " + cond + " (interval excludes 0)" + tails[2]
	default:
		return "true < " + cond + " (interval excludes 0)" + worse
	}
}

// Markdown is the report as a Markdown table: a row per protocol.
func (r *CounterfactualReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Image counterfactuals: %s\n\n", r.RunID)
	fmt.Fprintf(&b, "%s, IMG problems; vision tower %s; shuffle seed %d.\n\n", r.Split, r.Vision, r.ShuffleSeed)
	b.WriteString("| protocol | IMG n | true | shuffled | zero | true − shuffled | p | true − zero | p | changed (shuffled / zero) | reading |\n")
	b.WriteString("|---|---:|---|---|---|---|---:|---|---:|---:|---|\n")
	acc := func(a results.Accuracy) string {
		return fmt.Sprintf("%.2f [%.2f, %.2f]", a.Percent, a.CI.Lo, a.CI.Hi)
	}
	diff := func(p results.Paired) string { return fmt.Sprintf("%+.2f [%.2f, %.2f]", p.Diff, p.CI.Lo, p.CI.Hi) }
	for _, p := range r.Protocols {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %d / %d | %s |\n", p.Protocol, p.Accuracy[ImageTrue].Total,
			acc(p.Accuracy[ImageTrue]), acc(p.Accuracy[ImageShuffled]), acc(p.Accuracy[ImageZero]),
			diff(p.TrueMinusShuffled), strings.TrimPrefix(results.FormatP(p.TrueMinusShuffled.P), "= "),
			diff(p.TrueMinusZero), strings.TrimPrefix(results.FormatP(p.TrueMinusZero.P), "= "),
			p.Changed[ImageShuffled], p.Changed[ImageZero], p.Reading)
	}
	b.WriteString("\nAccuracies in %, Wilson 95 % intervals; differences in points over the same problems, paired bootstrap 95 % ")
	fmt.Fprintf(&b, "intervals (%d resamples, problems drawn with replacement), exact two-sided McNemar p. ", r.Resamples)
	b.WriteString("Shuffled: each IMG problem carries another IMG problem's features (one fixed derangement); zero: all-zero features.")
	var rec []string
	for _, p := range r.Protocols {
		if p.RecordedCompared > 0 {
			rec = append(rec, fmt.Sprintf("%s %d/%d", p.Protocol, p.RecordedSame, p.RecordedCompared))
		}
	}
	if len(rec) > 0 {
		fmt.Fprintf(&b, " True-image choices equal to the run's recorded ones: %s.", strings.Join(rec, ", "))
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, " Left out (image did not decode): %s.", strings.Join(slices.Sorted(slices.Values(r.Skipped)), ", "))
	}
	b.WriteString("\n")
	return b.String()
}
