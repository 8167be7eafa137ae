package scienceqa

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Categories are the columns of ScienceQA's accuracy tables, in the paper's order. As tools/evaluate_acc.py:
// NAT/SOC/LAN: subject "natural science"/"social science"/"language science"; TXT: a non-empty hint; IMG: an
// image; NO: neither (TXT and IMG overlap); G1-6: grade "grade1".."grade6"; G7-12: "grade7".."grade12"; Avg: all
// scored problems (not the mean of the other columns).
var Categories = []string{"NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg"}

var subjectCategory = map[string]string{
	"natural science":  "NAT",
	"social science":   "SOC",
	"language science": "LAN",
}

// CategoriesOf returns the categories a problem counts in (Avg always).
func CategoriesOf(p *Problem) []string {
	var cs []string
	if c, ok := subjectCategory[p.Subject]; ok {
		cs = append(cs, c)
	}
	switch {
	case p.HasText() && p.HasImage():
		cs = append(cs, "TXT", "IMG")
	case p.HasText():
		cs = append(cs, "TXT")
	case p.HasImage():
		cs = append(cs, "IMG")
	default:
		cs = append(cs, "NO")
	}
	if g, ok := strings.CutPrefix(p.Grade, "grade"); ok {
		if n, err := strconv.Atoi(g); err == nil {
			switch {
			case n >= 1 && n <= 6:
				cs = append(cs, "G1-6")
			case n >= 7 && n <= 12:
				cs = append(cs, "G7-12")
			}
		}
	}
	return append(cs, "Avg")
}

// CategoryScore is the accuracy of one category: Correct of Total problems, and Accuracy = 100·Correct/Total in
// percent (stored so that a scores file or summary.json is readable on its own). It is the one score type: the
// run records (results.Score) are this type.
type CategoryScore struct {
	Correct int `json:"correct"`
	Total   int `json:"total"`
	// Accuracy is 100·Correct/Total.
	Accuracy float64 `json:"accuracy"`
}

// NewCategoryScore returns the score of correct answers out of total. total must be positive: a category with
// no problems has no score (see Accuracy).
func NewCategoryScore(correct, total int) CategoryScore {
	return CategoryScore{Correct: correct, Total: total, Accuracy: 100 * float64(correct) / float64(total)}
}

// accuracyTolerance is how far a stored Accuracy may be from 100·Correct/Total (JSON round trips of a
// float64 are exact; this only absorbs values written by other tools with fewer digits).
const accuracyTolerance = 1e-6

// Validate checks a score: a positive total, correct within range, accuracy consistent with the counts.
func (s CategoryScore) Validate() error {
	if s.Total <= 0 {
		return fmt.Errorf("total %d: a category without problems must be absent (n/a), not scored", s.Total)
	}
	if s.Correct < 0 || s.Correct > s.Total {
		return fmt.Errorf("correct %d out of range [0, %d]", s.Correct, s.Total)
	}
	want := 100 * float64(s.Correct) / float64(s.Total)
	if math.Abs(s.Accuracy-want) > accuracyTolerance {
		return fmt.Errorf("accuracy %g does not match %d/%d = %g", s.Accuracy, s.Correct, s.Total, want)
	}
	return nil
}

// Accuracy maps a category (see Categories) to its score. A category without problems (for example no metadata
// for it) is absent, which tables print as n/a; it is never stored as 0.
type Accuracy map[string]CategoryScore

// Set records correct of total for category; total == 0 removes the category (n/a).
func (a Accuracy) Set(category string, correct, total int) {
	if total == 0 {
		delete(a, category)
		return
	}
	a[category] = NewCategoryScore(correct, total)
}

// Percent returns the accuracy of category in percent, and false when it is n/a.
func (a Accuracy) Percent(category string) (float64, bool) {
	s, ok := a[category]
	return s.Accuracy, ok
}

// Validate checks every score (see CategoryScore.Validate), in category name order.
func (a Accuracy) Validate() error {
	cats := make([]string, 0, len(a))
	for c := range a {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		if err := a[c].Validate(); err != nil {
			return fmt.Errorf("category %s: %w", c, err)
		}
	}
	return nil
}

// Scores are the per-category accuracies of a set of predictions.
type Scores struct {
	// Problems is the number of problems scored.
	Problems int `json:"problems"`
	// Unanswered counts predictions of -1 (unparsable answers counted as wrong).
	Unanswered int `json:"unanswered"`
	// Accuracy maps a category to its score; a category with no problem is absent (n/a), never 0.
	Accuracy Accuracy `json:"accuracy"`
	// NA lists the n/a categories in column order.
	NA []string `json:"na,omitempty"`
}

// Percent returns the accuracy of a category in percent, and false when it is n/a.
func (s *Scores) Percent(category string) (float64, bool) { return s.Accuracy.Percent(category) }

// Score computes the category accuracies of predictions (pid → choice index; -1 counts as wrong) over
// problems. Every problem must have a prediction, in range, as tools/evaluate_acc.py requires of a result file.
func Score(problems []*Problem, predictions map[string]int) (*Scores, error) {
	type tally struct{ correct, total int }
	t := map[string]*tally{}
	s := &Scores{Accuracy: Accuracy{}}
	for _, p := range problems {
		pred, ok := predictions[p.PID]
		if !ok {
			return nil, fmt.Errorf("scienceqa: no prediction for pid %s", p.PID)
		}
		if pred < Unanswered || pred >= len(p.Choices) {
			return nil, fmt.Errorf("scienceqa: pid %s: prediction %d out of range for %d choices (-1 = unanswered)", p.PID, pred, len(p.Choices))
		}
		if pred == Unanswered {
			s.Unanswered++
		}
		for _, c := range CategoriesOf(p) {
			if t[c] == nil {
				t[c] = &tally{}
			}
			t[c].total++
			if pred == p.Answer {
				t[c].correct++
			}
		}
	}
	s.Problems = len(problems)
	for _, c := range Categories {
		if x := t[c]; x != nil && x.total > 0 {
			s.Accuracy[c] = NewCategoryScore(x.correct, x.total)
		} else {
			s.NA = append(s.NA, c)
		}
	}
	return s, nil
}

// maxPredictionsSize bounds the size of a predictions file ReadPredictions reads: the 21,208 problems of ScienceQA
// make a file of about 0.3 MB, and a result file with generated text (run_gpt3.py's "outputs") about 10 MB. Without
// a bound, a wrong file (a 100 MB log, /dev/zero) would be read whole and decoded before any error.
const maxPredictionsSize int64 = 16 << 20

// ReadPredictions reads a predictions file: either a JSON object pid → choice index, or ScienceQA's result
// file ({"results": {pid: index}, ...}, as run_gpt3.py writes it). Indices may be JSON integers or strings of
// integers (evaluate_acc.py applies int() to them). A file over 16 MiB is refused before it is read.
func ReadPredictions(path string) (map[string]int, error) {
	return readPredictions(path, maxPredictionsSize)
}

// readPredictions is ReadPredictions with a size limit of maxSize bytes.
func readPredictions(path string, maxSize int64) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	defer f.Close()
	tooBig := func(size string) error {
		return fmt.Errorf("scienceqa: %s is %s, over the %d MiB limit for a predictions file (a JSON object pid → choice index for at most 21,208 problems is about 0.3 MB): is it the right file?",
			path, size, maxSize>>20)
	}
	if st, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	} else if st.Mode().IsRegular() && st.Size() > maxSize {
		return nil, tooBig(fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20)))
	}
	// The limit holds for pipes and devices too, whose size Stat does not tell.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: %w", path, err)
	}
	if int64(len(data)) > maxSize {
		return nil, tooBig("larger")
	}
	return ParsePredictions(path, data)
}

// ParsePredictions parses the contents of a predictions file (see ReadPredictions); name is used in errors.
// It decodes entry by entry in one pass, never into a map of the file's entries: a map keeps the last of
// duplicate pids silently, and holding every raw entry costs many times the file's size.
func ParsePredictions(name string, data []byte) (map[string]int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	notObject := func(err error) error {
		return fmt.Errorf("scienceqa: %s: not a JSON object of pid → choice index: %w", name, err)
	}
	if err := openObject(dec); err != nil {
		return nil, notObject(err)
	}
	// Top-level entries are the predictions unless the file has "results" (anywhere): their errors count only then.
	top := map[string]int{}
	var topErr error
	var results map[string]int
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, notObject(err)
		}
		key := t.(string)
		if key == "results" && results == nil {
			if results, err = decodePredictionObject(name, dec); err != nil {
				return nil, err
			}
			continue
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, notObject(err)
		}
		if results != nil || topErr != nil {
			continue
		}
		if _, dup := top[key]; dup {
			topErr = fmt.Errorf("scienceqa: %s: pid %s is predicted twice", name, key)
			continue
		}
		n, err := choiceIndex(v)
		if err != nil {
			topErr = fmt.Errorf("scienceqa: %s: pid %s: %w", name, key, err)
			continue
		}
		top[key] = n
	}
	if err := closeObject(dec); err != nil {
		return nil, notObject(err)
	}
	if results != nil {
		return results, nil
	}
	if topErr != nil {
		return nil, topErr
	}
	return top, nil
}

// decodePredictionObject decodes the "results" object: pid → choice index.
func decodePredictionObject(name string, dec *json.Decoder) (map[string]int, error) {
	bad := func(err error) error {
		return fmt.Errorf("scienceqa: %s: \"results\" is not an object of pid → choice index: %w", name, err)
	}
	if t, err := dec.Token(); err != nil {
		return nil, bad(err)
	} else if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, bad(fmt.Errorf("found %v, want an object", t))
	}
	preds := map[string]int{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		pid := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("scienceqa: %s: pid %s: %w", name, pid, err)
		}
		if _, dup := preds[pid]; dup {
			return nil, fmt.Errorf("scienceqa: %s: pid %s is predicted twice", name, pid)
		}
		if preds[pid], err = choiceIndex(v); err != nil {
			return nil, fmt.Errorf("scienceqa: %s: pid %s: %w", name, pid, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bad(err)
	}
	return preds, nil
}

// choiceIndex reads one prediction: a JSON integer, a string of one, or an integral float such as 2.0 (Python
// writes them when indices went through numpy).
func choiceIndex(v any) (int, error) {
	var text string
	switch x := v.(type) {
	case json.Number:
		text = x.String()
	case string:
		text = strings.TrimSpace(x)
	default:
		b, _ := json.Marshal(v)
		return 0, fmt.Errorf("prediction %s is not a choice index", b)
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
			return 0, fmt.Errorf("prediction %q is not an integer choice index", text)
		}
		n = int(f)
	}
	return n, nil
}

// openObject reads the opening brace of a top-level object.
func openObject(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("found %v, want an object", t)
	}
	return nil
}

// closeObject reads the closing brace of a top-level object and checks nothing follows it.
func closeObject(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// jsonObjectEntries splits a JSON object into its keys and raw values, in order, duplicates included.
func jsonObjectEntries(data []byte) (keys []string, vals []json.RawMessage, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil {
		return nil, nil, err
	} else if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("found %v, want an object", t)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys, vals = append(keys, t.(string)), append(vals, v)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("data after the object")
	}
	return keys, vals, nil
}

// CheckPredictions checks every prediction against the data set: its pid must be a problem of d and its index
// in range (-1 = unanswered). The first failures (in pid order) are reported.
func CheckPredictions(d *Dataset, preds map[string]int) error {
	pids := make([]string, 0, len(preds))
	for pid := range preds {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pidLess(pids[i], pids[j]) })
	var msgs []string
	bad := 0
	for _, pid := range pids {
		var msg string
		p, ok := d.Get(pid)
		switch {
		case !ok:
			msg = fmt.Sprintf("pid %s is not in the problems", pid)
		case preds[pid] < Unanswered || preds[pid] >= len(p.Choices):
			msg = fmt.Sprintf("pid %s: index %d out of range for %d choices (-1 = unanswered)", pid, preds[pid], len(p.Choices))
		default:
			continue
		}
		bad++
		if len(msgs) < 5 {
			msgs = append(msgs, msg)
		}
	}
	if bad > 0 {
		return fmt.Errorf("scienceqa: %d bad predictions: %s", bad, strings.Join(msgs, "; "))
	}
	return nil
}
