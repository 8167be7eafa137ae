package scienceqa

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Reason is why a record failed validation.
type Reason string

// Validation failures.
const (
	ReasonMalformed     Reason = "malformed"           // not a valid record (wrong JSON/column types, missing question)
	ReasonFewChoices    Reason = "too_few_choices"     // fewer than two choices
	ReasonAnswerRange   Reason = "answer_out_of_range" // answer index outside the choices
	ReasonUnknownSplit  Reason = "unknown_split"       // split is not train, val or test
	ReasonSplitMismatch Reason = "split_mismatch"      // the record's split differs from pid_splits.json
	ReasonImageMissing  Reason = "image_missing"       // an image is referenced but the file is absent
	ReasonDuplicatePID  Reason = "duplicate_pid"       // the same pid twice (parquet pid column, several files)
	ReasonUnsafePath    Reason = "unsafe_path"         // the pid or image field leads out of the problem's image folder
)

// maxExamples is how many failures of each reason a Report keeps as examples.
const maxExamples = 5

// ValidationError is a record that failed validation: the file it came from, its pid and why.
type ValidationError struct {
	File   string
	PID    string
	Reason Reason
	Msg    string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("scienceqa: %s: pid %s: %s (%s)", e.File, e.PID, e.Msg, e.Reason)
}

// Report counts the records read and, in lenient mode, those skipped by reason with a few examples.
type Report struct {
	// Read is the number of records read, Kept the number that passed validation.
	Read int `json:"read"`
	Kept int `json:"kept"`
	// Skipped counts the skipped records by reason (lenient mode only; strict mode stops at the first).
	Skipped map[Reason]int `json:"skipped,omitempty"`
	// Examples holds up to 5 failures of each reason, as "file: pid: message".
	Examples map[Reason][]string `json:"examples,omitempty"`
}

// SkippedTotal is the number of skipped records.
func (r *Report) SkippedTotal() int {
	n := 0
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

// add records a failure.
func (r *Report) add(e *ValidationError) {
	if r.Skipped == nil {
		r.Skipped = map[Reason]int{}
		r.Examples = map[Reason][]string{}
	}
	r.Skipped[e.Reason]++
	if len(r.Examples[e.Reason]) < maxExamples {
		r.Examples[e.Reason] = append(r.Examples[e.Reason], fmt.Sprintf("%s: %s: %s", e.File, e.PID, e.Msg))
	}
}

// String summarises the report on one line, reasons in name order.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records read, %d kept", r.Read, r.Kept)
	reasons := make([]string, 0, len(r.Skipped))
	for k := range r.Skipped {
		reasons = append(reasons, string(k))
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(&b, ", %d skipped (%s)", r.Skipped[Reason(k)], k)
	}
	return b.String()
}

// validate checks the fields every problem must have right. checkImage stats image files referenced by path.
func validate(file string, p *Problem, checkImage bool) *ValidationError {
	fail := func(r Reason, format string, args ...any) *ValidationError {
		return &ValidationError{File: file, PID: p.PID, Reason: r, Msg: fmt.Sprintf(format, args...)}
	}
	if len(p.Choices) < 2 {
		return fail(ReasonFewChoices, "%d choices, want at least 2", len(p.Choices))
	}
	if p.Answer < 0 || p.Answer >= len(p.Choices) {
		return fail(ReasonAnswerRange, "answer %d out of range for %d choices", p.Answer, len(p.Choices))
	}
	if !knownSplits[p.Split] {
		return fail(ReasonUnknownSplit, "unknown split %q (want train, val or test)", p.Split)
	}
	if checkImage && len(p.Image.Bytes) == 0 && p.Image.Path != "" {
		st, err := os.Stat(p.Image.Path)
		if err != nil {
			return fail(ReasonImageMissing, "image %s: %v", p.Image.Path, err)
		}
		if !st.Mode().IsRegular() {
			return fail(ReasonImageMissing, "image %s is not a regular file", p.Image.Path)
		}
	}
	return nil
}
