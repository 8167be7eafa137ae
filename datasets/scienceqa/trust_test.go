package scienceqa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeTrustFile writes content to dir/name (creating folders) and returns the path.
func writeTrustFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImagePathStaysInFolder: a pid or an image field that would lead out of the images folder (or out of the
// problem's own folder in it) is refused, naming the file and the pid, even when the file it points to exists;
// lenient mode skips such records as ReasonUnsafePath.
func TestImagePathStaysInFolder(t *testing.T) {
	dir := t.TempDir()
	// The files the hostile records point at exist, so only the containment check can refuse them.
	writeTrustFile(t, dir, "elsewhere/x/image.png", "png")
	writeTrustFile(t, dir, "secret", "do not read")
	writeTrustFile(t, dir, "data/images/test/1/image.png", "png")
	writeTrustFile(t, dir, "data/images/test/2/image.png", "png")
	cases := []struct{ name, pid, image string }{
		{"pid climbs out", "../../../elsewhere/x", "image.png"},
		{"image climbs out", "1", "../../../../secret"},
		{"image into a sibling problem", "1", "../2/image.png"},
		{"pid with a separator", "1/../2", "image.png"},
		{"pid dot-dot", "..", "test/1/image.png"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := `{"question": "q", "choices": ["a", "b"], "answer": 0, "hint": "", "image": "` + c.image + `", "split": "test"}`
			problems := writeTrustFile(t, dir, "data/problems.json", `{`+strconv.Quote(c.pid)+`: `+rec+`}`)
			_, err := LoadOfficial(Options{Problems: problems})
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Reason != ReasonUnsafePath || ve.PID != c.pid || !strings.Contains(err.Error(), problems) {
				t.Fatalf("pid %q image %q: got %v, want an unsafe-path error naming %s and the pid", c.pid, c.image, err, problems)
			}
			d, err := LoadOfficial(Options{Problems: problems, Lenient: true})
			if err != nil || len(d.Problems) != 0 || d.Report.Skipped[ReasonUnsafePath] != 1 {
				t.Fatalf("lenient: %v, %d kept, report %+v", err, len(d.Problems), d.Report)
			}
		})
	}
	// The ordinary case still loads.
	problems := writeTrustFile(t, dir, "data/problems.json",
		`{"1": {"question": "q", "choices": ["a", "b"], "answer": 0, "hint": "", "image": "image.png", "split": "test"}}`)
	d, err := LoadOfficial(Options{Problems: problems})
	if err != nil || len(d.Problems) != 1 || d.Problems[0].Image.Path != filepath.Join(dir, "data/images/test/1/image.png") {
		t.Fatalf("ordinary record: %v %+v", err, d)
	}
}

// TestPIDInTwoSplits: pid_splits.json listing a pid under two official splits is an error naming the pid and
// both splits, every time (it used to depend on map order which split won).
func TestPIDInTwoSplits(t *testing.T) {
	dir := t.TempDir()
	problems := writeTrustFile(t, dir, "problems.json",
		`{"1": {"question": "q", "choices": ["a", "b"], "answer": 0, "hint": "", "image": null},
		  "2": {"question": "q", "choices": ["a", "b"], "answer": 1, "hint": "", "image": null}}`)
	splits := writeTrustFile(t, dir, "pid_splits.json", `{"train": ["1", "2"], "val": [], "test": ["2"], "minitrain": ["1"]}`)
	for i := 0; i < 8; i++ { // the old behaviour varied between runs
		_, err := LoadOfficial(Options{Problems: problems, Splits: splits, NoImageCheck: true})
		if err == nil || !strings.Contains(err.Error(), "pid 2") || !strings.Contains(err.Error(), "train") ||
			!strings.Contains(err.Error(), "test") || !strings.Contains(err.Error(), splits) {
			t.Fatalf("try %d: %v, want an error naming %s, pid 2, train and test", i, err, splits)
		}
	}
	// The same pid twice in one split, and a split named twice, are errors too.
	for _, bad := range []string{`{"train": ["1", "1"]}`, `{"train": ["1"], "train": ["2"]}`} {
		writeTrustFile(t, dir, "pid_splits.json", bad)
		if _, err := LoadOfficial(Options{Problems: problems, Splits: splits, NoImageCheck: true}); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: %v, want an error", bad, err)
		}
	}
	// A mini split overlapping its split is how the official file is made: fine.
	writeTrustFile(t, dir, "pid_splits.json", `{"train": ["1"], "test": ["2"], "minitrain": ["1"], "minitest": ["2"]}`)
	if d, err := LoadOfficial(Options{Problems: problems, Splits: splits, NoImageCheck: true}); err != nil || len(d.Problems) != 2 {
		t.Fatalf("mini splits: %v", err)
	}
}

// TestDuplicatePIDInProblems: a pid key twice in problems.json is an error naming the pid (json.Unmarshal into a
// map silently kept the last record).
func TestDuplicatePIDInProblems(t *testing.T) {
	rec := func(q string) string {
		return `{"question": "` + q + `", "choices": ["a", "b"], "answer": 0, "hint": "", "image": null, "split": "test"}`
	}
	_, _, err := ParseProblemsJSON("p.json", []byte(`{"7": `+rec("first")+`, "8": `+rec("x")+`, "7": `+rec("second")+`}`))
	if err == nil || !strings.Contains(err.Error(), "p.json") || !strings.Contains(err.Error(), "pid 7") {
		t.Fatalf("got %v, want an error naming p.json and pid 7", err)
	}
}

// TestParquetDuplicatePIDColumn: two rows with the same value in the pid column are an error naming the pid, in
// one file and across files.
func TestParquetDuplicatePIDColumn(t *testing.T) {
	dir := t.TempDir()
	row := func(pid string) hfRowPID {
		return hfRowPID{PID: pid, hfRow: hfRow{Question: sp("q"), Choices: []string{"a", "b"}, Answer: 1}}
	}
	writeParquet(t, filepath.Join(dir, "test-00000-of-00001.parquet"), []hfRowPID{row("5"), row("6"), row("5")})
	_, err := LoadParquet(dir, false)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Reason != ReasonDuplicatePID || ve.PID != "5" {
		t.Fatalf("one file: %v", err)
	}
	os.Remove(filepath.Join(dir, "test-00000-of-00001.parquet"))
	writeParquet(t, filepath.Join(dir, "test-00000-of-00001.parquet"), []hfRowPID{row("5")})
	writeParquet(t, filepath.Join(dir, "train-00000-of-00001.parquet"), []hfRowPID{row("5")})
	if _, err := LoadParquet(dir, false); !errors.As(err, &ve) || ve.Reason != ReasonDuplicatePID || !strings.Contains(err.Error(), "test-00000-of-00001.parquet") {
		t.Fatalf("two files: %v", err)
	}
}

// TestPredictionsSizeBound: a predictions file over the size limit is refused before it is read, with an error
// naming the file and the limit (a 100 MB file used to take 2.5 GB and a minute before failing); one under the
// limit is read as before.
func TestPredictionsSizeBound(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("{")
	for i := 0; b.Len() < 3<<20; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"` + strconv.Itoa(i) + `": 1`)
	}
	b.WriteString("}")
	big := writeTrustFile(t, dir, "big.json", b.String())
	_, err := readPredictions(big, 1<<20)
	if err == nil || !strings.Contains(err.Error(), big) || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("3 MB file over a 1 MiB limit: %v, want an error naming %s and the limit", err, big)
	}
	small := writeTrustFile(t, dir, "small.json", `{"1": 0, "2": "1"}`)
	if p, err := readPredictions(small, 1<<20); err != nil || len(p) != 2 {
		t.Fatalf("small file: %v %v", p, err)
	}
}

// TestTruncationCount: over a set of problems tokenized with a token limit, the count says how many fitted
// whole, how many lost context words, and how many did not fit even without context, with example pids; the
// same from Tokenize and TokenizeCloze results.
func TestTruncationCount(t *testing.T) {
	long := strings.Repeat("word ", 200)
	mk := func(pid, hint string) *Problem {
		return &Problem{PID: pid, Question: "Which is right?", Choices: []string{"left", "right"}, Answer: 1, Hint: hint}
	}
	problems := []*Problem{mk("1", "short"), mk("2", long), mk("3", ""), mk("4", long), mk("5", strings.Repeat("x", 400))}
	problems[4].Question = strings.Repeat("a very long question ", 30)
	tr := Truncation{MaxLen: 300}
	for _, p := range problems {
		e, err := Tokenize(byteEncoder{}, p, QCMA, TokenOptions{MaxLen: tr.MaxLen})
		if err != nil && !errors.Is(err, ErrTooLong) {
			t.Fatal(err)
		}
		tr.Train.Note(p.PID, err == nil && e.ContextCut(), errors.Is(err, ErrTooLong))
		c, err := TokenizeCloze(byteEncoder{}, p, ClozeOptions{MaxLen: tr.MaxLen})
		if err != nil && !errors.Is(err, ErrTooLong) {
			t.Fatal(err)
		}
		tr.Eval.Note(p.PID, err == nil && c.ContextCut(), errors.Is(err, ErrTooLong))
	}
	want := TruncationCount{Problems: 5, ContextCut: 2, TooLong: 1, ContextCutPIDs: []string{"2", "4"}, TooLongPIDs: []string{"5"}}
	for name, got := range map[string]TruncationCount{"tokenize": tr.Train, "cloze": tr.Eval} {
		got.seen = nil
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	// A problem noted twice (several prompts of one problem) counts once; examples stop at 5.
	var c TruncationCount
	for i := 0; i < 8; i++ {
		c.Note(strconv.Itoa(i), true, false)
		c.Note(strconv.Itoa(i), false, false)
	}
	if c.Problems != 8 || c.ContextCut != 8 || len(c.ContextCutPIDs) != 5 {
		t.Errorf("%+v", c)
	}
}
