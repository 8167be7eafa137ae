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

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
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

// CategoryScore is the accuracy of one category (field names as results.Score, so the JSON reads into
// results.AccuracyTable).
type CategoryScore struct {
	Correct int `json:"correct"`
	Total   int `json:"total"`
	// Accuracy is 100·Correct/Total.
	Accuracy float64 `json:"accuracy"`
}

// Scores are the per-category accuracies of a set of predictions.
type Scores struct {
	// Problems is the number of problems scored.
	Problems int `json:"problems"`
	// Unanswered counts predictions of -1 (unparsable answers counted as wrong).
	Unanswered int `json:"unanswered"`
	// Accuracy maps a category to its score; a category with no problem is absent (n/a), never 0.
	Accuracy map[string]CategoryScore `json:"accuracy"`
	// NA lists the n/a categories in column order.
	NA []string `json:"na,omitempty"`
}

// Percent returns the accuracy of a category in percent, and false when it is n/a.
func (s *Scores) Percent(category string) (float64, bool) {
	c, ok := s.Accuracy[category]
	return c.Accuracy, ok
}

// Score computes the category accuracies of predictions (pid → choice index; -1 counts as wrong) over
// problems. Every problem must have a prediction, in range, as tools/evaluate_acc.py requires of a result file.
func Score(problems []*Problem, predictions map[string]int) (*Scores, error) {
	type tally struct{ correct, total int }
	t := map[string]*tally{}
	s := &Scores{Accuracy: map[string]CategoryScore{}}
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
			s.Accuracy[c] = CategoryScore{Correct: x.correct, Total: x.total, Accuracy: 100 * float64(x.correct) / float64(x.total)}
		} else {
			s.NA = append(s.NA, c)
		}
	}
	return s, nil
}

// WriteTable prints the scores as a table in the paper's column order: accuracy in % (two decimals, "n/a" for
// a category without problems) and the number of problems of each category.
func (s *Scores) WriteTable(w io.Writer) error {
	header := append([]string{""}, Categories...)
	align := tw.Alignment{tw.AlignLeft}
	for range Categories {
		align = append(align, tw.AlignRight)
	}
	tbl := tablewriter.NewTable(w,
		// Auto-format would upper-case the headers and turn "G1-6" into "G1 6".
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(align),
	)
	tbl.Header(header)
	acc := []string{"accuracy %"}
	num := []string{"problems"}
	for _, c := range Categories {
		if v, ok := s.Accuracy[c]; ok {
			acc = append(acc, fmt.Sprintf("%.2f", v.Accuracy))
			num = append(num, strconv.Itoa(v.Total))
		} else {
			acc = append(acc, "n/a")
			num = append(num, "0")
		}
	}
	if err := tbl.Append(acc); err != nil {
		return fmt.Errorf("scienceqa: table: %w", err)
	}
	if err := tbl.Append(num); err != nil {
		return fmt.Errorf("scienceqa: table: %w", err)
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("scienceqa: table: %w", err)
	}
	return nil
}

// String returns the table of WriteTable.
func (s *Scores) String() string {
	var b bytes.Buffer
	if err := s.WriteTable(&b); err != nil {
		return err.Error()
	}
	return b.String()
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
