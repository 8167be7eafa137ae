package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/adapterlab/llama-adapter/results"
)

// scoreReport is what `score -out` saves.
type scoreReport struct {
	ProblemsFile    string `json:"problems_file"`
	PredictionsFile string `json:"predictions_file"`
	Split           string `json:"split,omitempty"`
	// Partial is true when only the problems with a prediction were scored.
	Partial bool `json:"partial"`
	// Missing counts the problems of the selection that had no prediction (Partial only).
	Missing int `json:"missing"`
	*scienceqa.Scores
}

// scoreOptions are the `score` subcommand's flags.
type scoreOptions struct {
	problems, splits, split, predictions, out string
	partial, lenient, checkImages             bool
}

// runScore is the `score` subcommand: it scores external predictions per ScienceQA category, as
// tools/evaluate_acc.py does.
//
//	go run ./experiments/scienceqa score -problems PATH [-splits PATH -split test] -predictions PATH [-out FILE.json]
func runScore(args []string, stdout, stderr io.Writer) error {
	o, err := parseScoreFlags(args, stderr)
	if err != nil {
		return err
	}
	d, err := loadProblems(o.problems, o.splits, o.lenient, o.checkImages)
	if err != nil {
		return err
	}
	if d.Report.SkippedTotal() > 0 {
		fmt.Fprintf(stdout, "problems: %s\n", d.Report.String())
	}
	selected, err := o.selectSplit(d, stdout)
	if err != nil {
		return err
	}
	preds, err := scienceqa.ReadPredictions(o.predictions)
	if err != nil {
		return err
	}
	if err := scienceqa.CheckPredictions(d, preds); err != nil {
		return fmt.Errorf("%s: %w", o.predictions, err)
	}
	scored, missing, err := o.matchPredictions(selected, preds)
	if err != nil {
		return err
	}
	scores, err := scienceqa.Score(scored, preds)
	if err != nil {
		return err
	}
	if err := o.printScores(stdout, scores, len(scored), len(missing)); err != nil {
		return err
	}
	if o.out != "" {
		rep := scoreReport{ProblemsFile: o.problems, PredictionsFile: o.predictions, Split: o.split, Partial: len(missing) > 0,
			Missing: len(missing), Scores: scores}
		if err := results.WriteJSONAtomic(o.out, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %s\n", o.out)
	}
	return nil
}

// parseScoreFlags reads the `score` command line; -problems and -predictions are required.
func parseScoreFlags(args []string, stderr io.Writer) (*scoreOptions, error) {
	fs := newFlagSet("score", stderr)
	o := &scoreOptions{}
	fs.StringVar(&o.problems, "problems", "", "problems: official problems JSON (map pid → problem, e.g. problems.json or problems_test.json), or a folder / .parquet file in the Hugging Face layout (required)")
	fs.StringVar(&o.splits, "splits", "", "pid_splits.json (default: each problem's own split field)")
	fs.StringVar(&o.split, "split", "", "score only this split (train, val, test, minitest, ...); default: every problem")
	fs.StringVar(&o.predictions, "predictions", "", "predictions: JSON map pid → choice index (-1 = unanswered, wrong), or ScienceQA's result file {\"results\": {pid: index}} (required)")
	fs.StringVar(&o.out, "out", "", "also save the scores as JSON to this file")
	fs.BoolVar(&o.partial, "partial", false, "score only the problems that have a prediction (default: every selected problem must have one, as the official evaluation requires)")
	fs.BoolVar(&o.lenient, "lenient", false, "skip invalid problem records (reported) instead of failing")
	fs.BoolVar(&o.checkImages, "check-images", false, "also check that referenced image files exist (scoring only needs whether a problem has an image)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.problems == "" || o.predictions == "" {
		fs.Usage()
		return nil, fmt.Errorf("-problems and -predictions are required")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

// selectSplit returns the problems of -split (every problem without it), noting on stdout when some of the
// split's pids are not in the problems file.
func (o *scoreOptions) selectSplit(d *scienceqa.Dataset, stdout io.Writer) ([]*scienceqa.Problem, error) {
	if o.split == "" {
		return d.Problems, nil
	}
	selected, listed, err := d.Split(o.split)
	if err != nil {
		return nil, err
	}
	if len(selected) == 0 {
		return nil, fmt.Errorf("none of the %d pids of split %q is in %s", listed, o.split, o.problems)
	}
	if len(selected) < listed {
		fmt.Fprintf(stdout, "split %s: %d of its %d pids are in %s\n", o.split, len(selected), listed, filepath.Base(o.problems))
	}
	return selected, nil
}

// matchPredictions splits the selected problems into those with a prediction (scored) and those without
// (missing, an error unless -partial); a prediction for a pid outside the selection is an error.
func (o *scoreOptions) matchPredictions(selected []*scienceqa.Problem, preds map[string]int) (scored []*scienceqa.Problem, missing []string, err error) {
	inSelection := make(map[string]bool, len(selected))
	for _, p := range selected {
		inSelection[p.PID] = true
	}
	var outside []string
	for pid := range preds {
		if !inSelection[pid] {
			outside = append(outside, pid)
		}
	}
	if len(outside) > 0 {
		return nil, nil, fmt.Errorf("%s: %d predicted pids are not in split %q (e.g. pid %s)", o.predictions, len(outside), o.split, outside[0])
	}
	for _, p := range selected {
		if _, ok := preds[p.PID]; ok {
			scored = append(scored, p)
		} else {
			missing = append(missing, p.PID)
		}
	}
	if len(missing) > 0 && !o.partial {
		return nil, nil, fmt.Errorf("%s: %d of %d problems have no prediction (first: pid %s); use -partial to score only the predicted ones",
			o.predictions, len(missing), len(selected), strings.Join(missing[:min(3, len(missing))], ", "))
	}
	return scored, missing, nil
}

// printScores writes the headline (what was scored, skipped and unanswered), the per-category table and the
// metadata coverage notes.
func (o *scoreOptions) printScores(stdout io.Writer, scores *scienceqa.Scores, scored, missing int) error {
	what := "all problems"
	if o.split != "" {
		what = "split " + o.split
	}
	fmt.Fprintf(stdout, "%s: %d problems scored (%s of %s", filepath.Base(o.predictions), scored, what, filepath.Base(o.problems))
	if missing > 0 {
		fmt.Fprintf(stdout, "; %d without a prediction skipped", missing)
	}
	if scores.Unanswered > 0 {
		fmt.Fprintf(stdout, "; %d unanswered counted wrong", scores.Unanswered)
	}
	fmt.Fprintln(stdout, ")")
	if err := results.ScoresTable(scores).Render(stdout, results.Text); err != nil {
		return err
	}
	coverage(stdout, scores, "subject", "NAT", "SOC", "LAN")
	coverage(stdout, scores, "grade", "G1-6", "G7-12")
	if len(scores.NA) > 0 {
		fmt.Fprintf(stdout, "n/a: no scored problem has the metadata of %s\n", strings.Join(scores.NA, ", "))
	}
	return nil
}

// loadProblems reads the official layout (a JSON file) or the Hugging Face one (a folder or .parquet file).
func loadProblems(path, splits string, lenient, checkImages bool) (*scienceqa.Dataset, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case st.IsDir():
		return scienceqa.LoadParquet(path, lenient)
	case strings.HasSuffix(path, ".parquet"):
		return scienceqa.LoadParquetFiles([]string{path}, lenient)
	}
	return scienceqa.LoadOfficial(scienceqa.Options{Problems: path, Splits: splits, Lenient: lenient, NoImageCheck: !checkImages})
}

// coverage notes when a group of categories covers fewer problems than were scored (missing metadata).
func coverage(w io.Writer, s *scienceqa.Scores, field string, cats ...string) {
	n := 0
	for _, c := range cats {
		n += s.Accuracy[c].Total
	}
	if n < s.Problems {
		fmt.Fprintf(w, "%s: %d of %d scored problems have a %s; the others lack that metadata\n",
			strings.Join(cats, "/"), n, s.Problems, field)
	}
}
