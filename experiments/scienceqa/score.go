package main

import (
	"flag"
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

// runScore is the `score` subcommand: it scores external predictions per ScienceQA category, as
// tools/evaluate_acc.py does.
//
//	go run ./experiments/scienceqa score -problems PATH [-splits PATH -split test] -predictions PATH [-out FILE.json]
func runScore(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	problems := fs.String("problems", "", "problems: official problems JSON (map pid → problem, e.g. problems.json or problems_test.json), or a folder / .parquet file in the Hugging Face layout (required)")
	splits := fs.String("splits", "", "pid_splits.json (default: each problem's own split field)")
	split := fs.String("split", "", "score only this split (train, val, test, minitest, ...); default: every problem")
	predictions := fs.String("predictions", "", "predictions: JSON map pid → choice index (-1 = unanswered, wrong), or ScienceQA's result file {\"results\": {pid: index}} (required)")
	out := fs.String("out", "", "also save the scores as JSON to this file")
	partial := fs.Bool("partial", false, "score only the problems that have a prediction (default: every selected problem must have one, as the official evaluation requires)")
	lenient := fs.Bool("lenient", false, "skip invalid problem records (reported) instead of failing")
	checkImages := fs.Bool("check-images", false, "also check that referenced image files exist (scoring only needs whether a problem has an image)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *problems == "" || *predictions == "" {
		fs.Usage()
		return fmt.Errorf("-problems and -predictions are required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	d, err := loadProblems(*problems, *splits, *lenient, *checkImages)
	if err != nil {
		return err
	}
	if d.Report.SkippedTotal() > 0 {
		fmt.Fprintf(stdout, "problems: %s\n", d.Report.String())
	}
	selected := d.Problems
	if *split != "" {
		var listed int
		if selected, listed, err = d.Split(*split); err != nil {
			return err
		}
		if len(selected) == 0 {
			return fmt.Errorf("none of the %d pids of split %q is in %s", listed, *split, *problems)
		}
		if len(selected) < listed {
			fmt.Fprintf(stdout, "split %s: %d of its %d pids are in %s\n", *split, len(selected), listed, filepath.Base(*problems))
		}
	}

	preds, err := scienceqa.ReadPredictions(*predictions)
	if err != nil {
		return err
	}
	if err := scienceqa.CheckPredictions(d, preds); err != nil {
		return fmt.Errorf("%s: %w", *predictions, err)
	}
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
		return fmt.Errorf("%s: %d predicted pids are not in split %q (e.g. pid %s)", *predictions, len(outside), *split, outside[0])
	}
	var scored []*scienceqa.Problem
	var missing []string
	for _, p := range selected {
		if _, ok := preds[p.PID]; ok {
			scored = append(scored, p)
		} else {
			missing = append(missing, p.PID)
		}
	}
	if len(missing) > 0 && !*partial {
		return fmt.Errorf("%s: %d of %d problems have no prediction (first: pid %s); use -partial to score only the predicted ones",
			*predictions, len(missing), len(selected), strings.Join(missing[:min(3, len(missing))], ", "))
	}
	scores, err := scienceqa.Score(scored, preds)
	if err != nil {
		return err
	}

	what := "all problems"
	if *split != "" {
		what = "split " + *split
	}
	fmt.Fprintf(stdout, "%s: %d problems scored (%s of %s", filepath.Base(*predictions), len(scored), what, filepath.Base(*problems))
	if len(missing) > 0 {
		fmt.Fprintf(stdout, "; %d without a prediction skipped", len(missing))
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
	if *out != "" {
		rep := scoreReport{ProblemsFile: *problems, PredictionsFile: *predictions, Split: *split, Partial: len(missing) > 0,
			Missing: len(missing), Scores: scores}
		if err := results.WriteJSONAtomic(*out, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %s\n", *out)
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
