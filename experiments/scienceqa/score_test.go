package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/results"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestDispatcher(t *testing.T) {
	// An unknown flag stops every subcommand before any work (flag errors exit 1 with the flag named).
	for _, name := range []string{"train", "eval", "features"} {
		code, _, stderr := runCmd(t, name, "-no-such-flag")
		if code == 0 || !strings.Contains(stderr, "no-such-flag") {
			t.Errorf("%s: code %d, stderr %q", name, code, stderr)
		}
	}
	// Flags without a subcommand go to train.
	if code, _, stderr := runCmd(t, "-no-such-flag"); code == 0 || !strings.Contains(stderr, "scienceqa train") {
		t.Errorf("flags only: %d %q", code, stderr)
	}
	// -h is the subcommands and the default action's (train's) flags, on stdout, and no error.
	if code, stdout, _ := runCmd(t, "-h"); code != 0 || !strings.Contains(stdout, "usage") || !strings.Contains(stdout, "-train-limit") || !strings.Contains(stdout, "-preset") {
		t.Errorf("-h: %d %q", code, stdout)
	}
	if code, _, stderr := runCmd(t, "nope"); code != 2 || !strings.Contains(stderr, `unknown subcommand "nope"`) {
		t.Errorf("unknown: %d %q", code, stderr)
	}
}

// TestScoreRealTest scores synthetic predictions for the 4,241 real test problems in both file formats and
// checks every category against an independent count made from the raw JSON with evaluate_acc.py's rules.
func TestScoreRealTest(t *testing.T) {
	problemsPath := assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	splitsPath := assets.Require(t, assets.Path("scienceqa", "pid_splits.json"))
	preds, want := syntheticPredictions(t, problemsPath)
	dir := t.TempDir()
	plain := filepath.Join(dir, "predictions.json")
	resultFile := filepath.Join(dir, "result.json")
	b, _ := json.Marshal(preds)
	os.WriteFile(plain, b, 0o644)
	b, _ = json.Marshal(map[string]any{"acc": 0, "results": preds, "outputs": map[string]string{}})
	os.WriteFile(resultFile, b, 0o644)

	for _, predPath := range []string{plain, resultFile} {
		out := filepath.Join(dir, "scores.json")
		code, stdout, stderr := runCmd(t, "score", "-problems", problemsPath, "-splits", splitsPath, "-split", "test",
			"-predictions", predPath, "-out", out)
		if code != 0 {
			t.Fatalf("%s: code %d: %s", predPath, code, stderr)
		}
		for _, s := range []string{"4241 problems scored", "│ accuracy % │", "NAT/SOC/LAN: 361 of 4241 scored problems have a subject"} {
			if !strings.Contains(stdout, s) {
				t.Errorf("stdout lacks %q:\n%s", s, stdout)
			}
		}
		var rep struct {
			Problems   int                   `json:"problems"`
			Unanswered int                   `json:"unanswered"`
			Accuracy   results.AccuracyTable `json:"accuracy"`
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if err := rep.Accuracy.Validate(); err != nil {
			t.Errorf("results.AccuracyTable: %v", err)
		}
		if rep.Problems != 4241 || len(rep.Accuracy) != len(want) {
			t.Errorf("%d problems, %d categories (want %d)", rep.Problems, len(rep.Accuracy), len(want))
		}
		for c, w := range want {
			got := rep.Accuracy[c]
			if got.Correct != w.correct || got.Total != w.total {
				t.Errorf("%s: %d/%d, independent count %d/%d", c, got.Correct, got.Total, w.correct, w.total)
			}
		}
	}
	if want["IMG"].total != 2017 || want["Avg"].total != 4241 {
		t.Errorf("fixture: %d image problems", want["IMG"].total)
	}
}

// tally is one category's independent count.
type tally struct{ correct, total int }

// syntheticPredictions reads the raw problems JSON and predicts each problem's answer, except a third wrong and a
// seventh unanswered (by pid), and counts each category's correct and total predictions with evaluate_acc.py's
// rules, independently of the scienceqa package.
func syntheticPredictions(t *testing.T, problemsPath string) (map[string]int, map[string]*tally) {
	data, err := os.ReadFile(problemsPath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]struct {
		Choices []string
		Answer  int
		Hint    string
		Image   *string
		Subject string
		Grade   string
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	preds := map[string]int{}
	want := map[string]*tally{}
	add := func(c string, ok bool) {
		if want[c] == nil {
			want[c] = &tally{}
		}
		want[c].total++
		if ok {
			want[c].correct++
		}
	}
	for pid, r := range raw {
		n, _ := strconv.Atoi(pid)
		pred := r.Answer
		if n%3 == 0 { // a third wrong
			pred = (r.Answer + 1) % len(r.Choices)
		}
		if n%7 == 0 {
			pred = -1
		}
		preds[pid] = pred
		ok := pred == r.Answer
		add("Avg", ok)
		switch r.Subject {
		case "natural science":
			add("NAT", ok)
		case "social science":
			add("SOC", ok)
		case "language science":
			add("LAN", ok)
		}
		if r.Hint != "" {
			add("TXT", ok)
		}
		if r.Image != nil && *r.Image != "" {
			add("IMG", ok)
		}
		if r.Hint == "" && (r.Image == nil || *r.Image == "") {
			add("NO", ok)
		}
		for g := 1; g <= 12; g++ {
			if r.Grade == "grade"+strconv.Itoa(g) {
				if g <= 6 {
					add("G1-6", ok)
				} else {
					add("G7-12", ok)
				}
			}
		}
	}
	return preds, want
}

func TestScoreErrors(t *testing.T) {
	dir := t.TempDir()
	problems := filepath.Join(dir, "problems.json")
	os.WriteFile(problems, []byte(`{
		"1": {"question": "q1", "choices": ["a", "b"], "answer": 0, "hint": "", "image": null, "split": "test"},
		"2": {"question": "q2", "choices": ["a", "b", "c"], "answer": 2, "hint": "h", "image": "image.png", "split": "test", "subject": "social science", "grade": "grade3"},
		"3": {"question": "q3", "choices": ["a", "b"], "answer": 1, "hint": "", "image": null, "split": "val"}}`), 0o644)
	n := 0
	write := func(content string) string {
		n++
		p := filepath.Join(dir, "p"+strconv.Itoa(n)+".json")
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-problems", problems}, "-problems and -predictions are required"},
		{[]string{"-problems", problems, "-predictions", write(`{"1": 0, "2": 2, "3": 1, "9": 0}`)}, "pid 9 is not in the problems"},
		{[]string{"-problems", problems, "-predictions", write(`{"1": 0, "2": 3, "3": 1}`)}, "pid 2: index 3 out of range for 3 choices"},
		{[]string{"-problems", problems, "-predictions", write(`{"1": 0, "2": 2}`)}, "1 of 3 problems have no prediction"},
		{[]string{"-problems", problems, "-split", "test", "-predictions", write(`{"1": 0, "2": 2, "3": 1}`)}, `not in split "test"`},
		{[]string{"-problems", problems, "-split", "dev", "-predictions", write(`{}`)}, `unknown split "dev"`},
		{[]string{"-problems", problems, "-predictions", write(`{"1": "x"}`)}, "p6.json: pid 1"},
		{[]string{"-problems", filepath.Join(dir, "nope.json"), "-predictions", write(`{}`)}, "nope.json"},
	}
	for _, c := range cases {
		code, _, stderr := runCmd(t, append([]string{"score"}, c.args...)...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: code %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
	}
	// -partial scores the predicted problems only; no image file is needed to count pid 2 as IMG.
	code, stdout, stderr := runCmd(t, "score", "-problems", problems, "-split", "test", "-partial", "-predictions", write(`{"2": -1}`))
	if code != 0 {
		t.Fatalf("partial: %d %s", code, stderr)
	}
	for _, s := range []string{"1 problems scored (split test of problems.json; 1 without a prediction skipped; 1 unanswered counted wrong)",
		"│ accuracy % │ n/a │ 0.00 │ n/a │ 0.00 │ 0.00 │ n/a │ 0.00 │   n/a │ 0.00 │", "n/a: no scored problem has the metadata of NAT, LAN, NO, G7-12"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("partial: stdout lacks %q:\n%s", s, stdout)
		}
	}
	// With -check-images the missing image file is an error naming the file and pid.
	code, _, stderr = runCmd(t, "score", "-problems", problems, "-check-images", "-predictions", write(`{"1": 0, "2": 2, "3": 1}`))
	if code == 0 || !strings.Contains(stderr, "problems.json: pid 2") {
		t.Errorf("check-images: %d %q", code, stderr)
	}
}
