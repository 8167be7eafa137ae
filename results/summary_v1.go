package results

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Summaries written before protocols were values (version 1) hold the primary protocol's table in "accuracy",
// the others in "scorings", and baselines by display label (name → category → percent, the zero-shot ones named
// "zero-shot, <label>"). They are read as they are and converted here, so committed run folders stay readable
// without rewriting their files (their complete.json digests stay valid).

// v1ZeroShotLabels maps a version-1 zero-shot baseline's label to its protocol.
var v1ZeroShotLabels = map[string]string{
	"letter scoring":                "letter",
	"cloze scoring":                 "cloze",
	"cloze scoring, per-token mean": "cloze-norm",
}

// v1Primary is the primary protocol of a version-1 -eval mode ("" and unknown modes: letter, the default of every
// version).
func v1Primary(mode string) string {
	switch mode {
	case "generate", "both", "all":
		return "generate"
	case "cloze":
		return "cloze"
	}
	return "letter"
}

// UnmarshalJSON reads a summary of either version.
func (s *Summary) UnmarshalJSON(data []byte) error {
	type plain Summary // Summary without its methods
	var v struct {
		plain
		Baselines json.RawMessage          `json:"baselines"`
		Accuracy  AccuracyTable            `json:"accuracy"`
		Scorings  map[string]AccuracyTable `json:"scorings"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = Summary(v.plain)
	if v.Accuracy == nil {
		if len(v.Baselines) > 0 {
			return json.Unmarshal(v.Baselines, &s.Baselines)
		}
		return nil
	}
	// Version 1.
	var mode struct {
		EvalMode string `json:"eval_mode"`
	}
	if len(s.Config) > 0 {
		if err := json.Unmarshal(s.Config, &mode); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	s.Primary = v1Primary(mode.EvalMode)
	s.Scores = map[string]AccuracyTable{s.Primary: v.Accuracy}
	for p, t := range v.Scorings {
		s.Scores[p] = t
	}
	var old map[string]map[string]float64
	if len(v.Baselines) > 0 {
		if err := json.Unmarshal(v.Baselines, &old); err != nil {
			return fmt.Errorf("baselines: %w", err)
		}
	}
	for name, row := range old {
		label, zeroShot := strings.CutPrefix(name, ZeroShot+", ")
		switch p, known := v1ZeroShotLabels[label]; {
		case zeroShot && known:
			s.SetBaseline(ZeroShot, p, row)
		case zeroShot:
			return fmt.Errorf("baselines: unknown zero-shot label %q", label)
		default:
			s.SetBaseline(name, AnyProtocol, row)
		}
	}
	return nil
}
