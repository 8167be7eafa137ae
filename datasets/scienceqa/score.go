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

// ReadPredictions reads a predictions file: either a JSON object pid → choice index, or ScienceQA's result
// file ({"results": {pid: index}, ...}, as run_gpt3.py writes it). Indices may be JSON integers or strings of
// integers (evaluate_acc.py applies int() to them).
func ReadPredictions(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	return ParsePredictions(path, data)
}

// ParsePredictions parses the contents of a predictions file (see ReadPredictions); name is used in errors.
func ParsePredictions(name string, data []byte) (map[string]int, error) {
	// Decoded entry by entry, not into a map: a map keeps the last of duplicate pids silently.
	keys, vals, err := jsonObjectEntries(data)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: not a JSON object of pid → choice index: %w", name, err)
	}
	for i, k := range keys {
		if k == "results" {
			if keys, vals, err = jsonObjectEntries(vals[i]); err != nil {
				return nil, fmt.Errorf("scienceqa: %s: \"results\" is not an object of pid → choice index: %w", name, err)
			}
			break
		}
	}
	top := make(map[string]json.RawMessage, len(keys))
	for i, pid := range keys {
		if _, dup := top[pid]; dup {
			return nil, fmt.Errorf("scienceqa: %s: pid %s is predicted twice", name, pid)
		}
		top[pid] = vals[i]
	}
	preds := make(map[string]int, len(top))
	for pid, raw := range top {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("scienceqa: %s: pid %s: %w", name, pid, err)
		}
		var text string
		switch x := v.(type) {
		case json.Number:
			text = x.String()
		case string:
			text = strings.TrimSpace(x)
		default:
			return nil, fmt.Errorf("scienceqa: %s: pid %s: prediction %s is not a choice index", name, pid, raw)
		}
		n, err := strconv.Atoi(text)
		if err != nil {
			// Accept integral floats such as 2.0 (Python writes them when indices went through numpy).
			f, ferr := strconv.ParseFloat(text, 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
				return nil, fmt.Errorf("scienceqa: %s: pid %s: prediction %s is not an integer choice index", name, pid, raw)
			}
			n = int(f)
		}
		preds[pid] = n
	}
	return preds, nil
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
