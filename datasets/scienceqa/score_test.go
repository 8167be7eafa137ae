package scienceqa

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scoreFixture: six problems covering every category; predictions give 3 of 6 right.
//
//	pid subject   hint image grade   answer pred  categories
//	1   natural   yes  no    grade2  0      0 ✓   NAT TXT G1-6
//	2   natural   no   yes   grade8  1      0 ✗   NAT IMG G7-12
//	3   social    yes  yes   grade5  2      2 ✓   SOC TXT IMG G1-6
//	4   language  no   no    grade11 0     -1 ✗   LAN NO G7-12
//	5   -         yes  no    -       1      1 ✓   TXT
//	6   -         no   no    -       0      1 ✗   NO
func scoreFixture() ([]*Problem, map[string]int) {
	img := Image{Path: "image.png"}
	abc := []string{"a", "b", "c"}
	ps := []*Problem{
		{PID: "1", Subject: "natural science", Hint: "h", Grade: "grade2", Choices: abc, Answer: 0},
		{PID: "2", Subject: "natural science", Image: img, Grade: "grade8", Choices: abc, Answer: 1},
		{PID: "3", Subject: "social science", Hint: "h", Image: img, Grade: "grade5", Choices: abc, Answer: 2},
		{PID: "4", Subject: "language science", Grade: "grade11", Choices: abc, Answer: 0},
		{PID: "5", Hint: "h", Choices: abc, Answer: 1},
		{PID: "6", Choices: abc, Answer: 0},
	}
	return ps, map[string]int{"1": 0, "2": 0, "3": 2, "4": -1, "5": 1, "6": 1}
}

func TestScoreHandComputed(t *testing.T) {
	ps, preds := scoreFixture()
	s, err := Score(ps, preds)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{ // correct, total
		"NAT": {1, 2}, "SOC": {1, 1}, "LAN": {0, 1}, "TXT": {3, 3}, "IMG": {1, 2}, "NO": {0, 2},
		"G1-6": {2, 2}, "G7-12": {0, 2}, "Avg": {3, 6},
	}
	for c, w := range want {
		got, ok := s.Accuracy[c]
		if !ok || got.Correct != w[0] || got.Total != w[1] || math.Abs(got.Accuracy-100*float64(w[0])/float64(w[1])) > 1e-12 {
			t.Errorf("%s: %+v, want %d/%d", c, got, w[0], w[1])
		}
	}
	if len(s.NA) != 0 || s.Problems != 6 || s.Unanswered != 1 {
		t.Errorf("na %v, problems %d, unanswered %d", s.NA, s.Problems, s.Unanswered)
	}
	// The table of these scores: results.TestScoresTable.
}

// Categories without problems (no metadata) are n/a: absent from the JSON, "n/a" in the table, never 0.
func TestScoreNA(t *testing.T) {
	ps, preds := scoreFixture()
	s, err := Score(ps[4:], preds)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"NAT", "SOC", "LAN", "IMG", "G1-6", "G7-12"}; !reflect.DeepEqual(s.NA, want) {
		t.Errorf("n/a %v, want %v", s.NA, want)
	}
	if v, ok := s.Percent("TXT"); !ok || v != 100 {
		t.Errorf("TXT %v %v", v, ok)
	}
	if _, ok := s.Percent("NAT"); ok {
		t.Error("NAT scored without problems")
	}
	if v, ok := s.Percent("NO"); !ok || v != 0 || s.Accuracy["Avg"].Total != 2 {
		t.Errorf("NO %v %v, Avg %+v (the table of these scores: results.TestScoresTable)", v, ok, s.Accuracy["Avg"])
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(data, &back)
	acc := back["accuracy"].(map[string]any)
	if _, ok := acc["NAT"]; ok || len(acc) != 3 {
		t.Errorf("JSON accuracy %v", acc)
	}
	if _, err := Score(nil, nil); err != nil {
		t.Errorf("empty: %v", err)
	}
}

func TestScoreErrors(t *testing.T) {
	ps, preds := scoreFixture()
	delete(preds, "3")
	if _, err := Score(ps, preds); err == nil || !strings.Contains(err.Error(), "pid 3") {
		t.Errorf("missing prediction: %v", err)
	}
	preds["3"] = 3
	if _, err := Score(ps, preds); err == nil || !strings.Contains(err.Error(), "pid 3") {
		t.Errorf("out of range: %v", err)
	}
}

func TestPredictionFiles(t *testing.T) {
	ps, preds := scoreFixture()
	d := newDataset(ps, nil, Report{})
	dir := t.TempDir()
	plain := filepath.Join(dir, "preds.json")
	os.WriteFile(plain, []byte(`{"1": 0, "2": 0, "3": 2, "4": -1, "5": 1, "6": 1}`), 0o644)
	// ScienceQA's result file (run_gpt3.py): indices under "results", with other keys around; evaluate_acc.py
	// applies int() so strings of digits count too.
	result := filepath.Join(dir, "result.json")
	os.WriteFile(result, []byte(`{"acc": 50.0, "correct": 3, "count": 6, "shot_qids": ["12"], "args": {"seed": 10},
		"results": {"1": 0, "2": "0", "3": 2, "4": -1, "5": 1.0, "6": 1}, "outputs": {"1": "The answer is A."}}`), 0o644)
	for _, path := range []string{plain, result} {
		got, err := ReadPredictions(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(got, preds) {
			t.Errorf("%s: %v, want %v", path, got, preds)
		}
		if err := CheckPredictions(d, got); err != nil {
			t.Error(err)
		}
	}
	bad := map[string]string{
		`[1, 2]`:                 "not a JSON object",
		`{"1": "A"}`:             "pid 1",
		`{"1": 1.5}`:             "pid 1",
		`{"1": [0]}`:             "pid 1",
		`{"results": [0]}`:       "results",
		`{"results": {"1": {}}}`: "pid 1",
		// Duplicate pids are an error (a map would keep the last one silently).
		`{"1": 0, "2": 1, "1": 1}`:      "pid 1 is predicted twice",
		`{"results": {"7": 0, "7": 0}}`: "pid 7 is predicted twice",
		`{"1": 0} {"2": 1}`:             "data after the object",
		`{"1": 0`:                       "not a JSON object",
	}
	for content, want := range bad {
		if _, err := ParsePredictions("p.json", []byte(content)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "p.json") {
			t.Errorf("%s: %v, want an error naming p.json and %q", content, err, want)
		}
	}
	// A file's errors name its full path.
	dup := filepath.Join(dir, "dup.json")
	os.WriteFile(dup, []byte(`{"5": 0, "5": 1}`), 0o644)
	if _, err := ReadPredictions(dup); err == nil || !strings.Contains(err.Error(), dup+": pid 5") {
		t.Errorf("duplicate pid in %s: %v", dup, err)
	}
	err := CheckPredictions(d, map[string]int{"1": 0, "99": 1, "2": 3, "3": -2})
	for _, want := range []string{"3 bad predictions", "pid 99 is not in the problems", "pid 2: index 3 out of range", "pid 3: index -2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPredictions: %v, want %q", err, want)
		}
	}
}
