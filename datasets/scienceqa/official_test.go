package scienceqa

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

func samplePath(t testing.TB) string {
	return assets.Require(t, assets.Path("scienceqa", "problems_sample150.json"))
}

// sampleProblems parses problems_sample150.json (no image check: the sample's train/val images are not shipped).
func sampleProblems(t testing.TB) []*Problem {
	t.Helper()
	data, err := os.ReadFile(samplePath(t))
	if err != nil {
		t.Fatal(err)
	}
	ps, errs, err := ParseProblemsJSON("problems_sample150.json", data)
	if err != nil || len(errs) > 0 {
		t.Fatalf("parse: %v %v", err, errs)
	}
	return ps
}

func sampleProblem(t testing.TB, pid string) *Problem {
	t.Helper()
	for _, p := range sampleProblems(t) {
		if p.PID == pid {
			return p
		}
	}
	t.Fatalf("pid %s not in the sample", pid)
	return nil
}

// TestSampleEveryField checks pid 1 field by field against the record as the file has it, and that every
// field of every sample record survives parsing (compared with a generic JSON decoding of the same file).
func TestSampleEveryField(t *testing.T) {
	ps := sampleProblems(t)
	if len(ps) != 150 {
		t.Fatalf("%d problems, want 150", len(ps))
	}
	p := ps[0]
	want := &Problem{
		PID: "1", Split: "train", Question: "Which of these states is farthest north?",
		Choices: []string{"West Virginia", "Louisiana", "Arizona", "Oklahoma"}, Answer: 0, Hint: "",
		Image: Image{Path: "image.png"}, Task: "closed choice", Grade: "grade2", Subject: "social science",
		Topic: "geography", Category: "Geography", Skill: "Read a map: cardinal directions",
		Lecture: "Maps have four cardinal directions, or main directions. Those directions are north, south, east, and west.\n" +
			"A compass rose is a set of arrows that point to the cardinal directions. A compass rose usually shows only the first letter of each cardinal direction.\n" +
			"The north arrow points to the North Pole. On most maps, north is at the top of the map.",
		Solution: "To find the answer, look at the compass rose. Look at which way the north arrow is pointing. West Virginia is farthest north.",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("pid 1:\n got %+v\nwant %+v", p, want)
	}

	var generic map[string]map[string]any
	data, _ := os.ReadFile(samplePath(t))
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	splits := map[string]int{}
	for _, p := range ps {
		g := generic[p.PID]
		if len(g) != 14 {
			t.Errorf("pid %s: %d fields in the file, the sample should have all 14", p.PID, len(g))
		}
		got := map[string]any{
			"question": p.Question, "hint": p.Hint, "task": p.Task, "grade": p.Grade, "subject": p.Subject,
			"topic": p.Topic, "category": p.Category, "skill": p.Skill, "lecture": p.Lecture,
			"solution": p.Solution, "split": p.Split, "answer": float64(p.Answer),
		}
		for k, v := range got {
			if g[k] != v {
				t.Errorf("pid %s: %s = %q, file has %q", p.PID, k, v, g[k])
			}
		}
		if img, _ := g["image"].(string); img != p.Image.Path {
			t.Errorf("pid %s: image %q, file has %v", p.PID, p.Image.Path, g["image"])
		}
		cs, _ := g["choices"].([]any)
		if len(cs) != len(p.Choices) {
			t.Errorf("pid %s: %d choices, file has %d", p.PID, len(p.Choices), len(cs))
		}
		for i := range cs {
			if i < len(p.Choices) && cs[i] != p.Choices[i] {
				t.Errorf("pid %s: choice %d = %q, file has %q", p.PID, i, p.Choices[i], cs[i])
			}
		}
		splits[p.Split]++
	}
	if splits["train"] != 50 || splits["val"] != 50 || splits["test"] != 50 {
		t.Errorf("splits %v, want 50 each", splits)
	}
}

// TestSampleLoadWithImages loads the sample in the official layout with a stand-in image folder (empty files
// where the sample references images), strictly, then without the stand-ins leniently.
func TestSampleLoadWithImages(t *testing.T) {
	ps := sampleProblems(t)
	dir := t.TempDir()
	withImage := 0
	for _, p := range ps {
		if p.Image.Path == "" {
			continue
		}
		withImage++
		d := filepath.Join(dir, p.Split, p.PID)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, p.Image.Path), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Problems: samplePath(t), Splits: assets.Require(t, assets.Path("scienceqa", "pid_splits.json")), Images: dir}
	d, err := LoadOfficial(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Problems) != 150 || d.Report.Read != 150 || d.Report.Kept != 150 || d.Report.SkippedTotal() != 0 {
		t.Fatalf("%d problems, report %s", len(d.Problems), d.Report.String())
	}
	n := 0
	for _, p := range d.Problems {
		if p.HasImage() {
			n++
			if want := filepath.Join(dir, p.Split, p.PID, "image.png"); p.Image.Path != want {
				t.Fatalf("pid %s: image path %s, want %s", p.PID, p.Image.Path, want)
			}
		}
	}
	if n != withImage {
		t.Errorf("%d problems with images, want %d", n, withImage)
	}
	test, listed, err := d.Split("test")
	if err != nil || len(test) != 50 || listed != 4241 {
		t.Errorf("Split(test) = %d of %d, %v; want 50 of 4241", len(test), listed, err)
	}

	// The real images folder only has test images: strict fails on the first train image, lenient skips.
	o.Images = t.TempDir()
	if _, err := LoadOfficial(o); err == nil || !strings.Contains(err.Error(), "problems_sample150.json: pid ") ||
		!strings.Contains(err.Error(), string(ReasonImageMissing)) {
		t.Errorf("strict load without images: %v", err)
	}
	// Without the image check the references are kept (scoring needs only whether there is an image).
	o.NoImageCheck = true
	if d, err = LoadOfficial(o); err != nil || len(d.Problems) != 150 {
		t.Errorf("NoImageCheck: %v", err)
	}
	o.NoImageCheck = false
	o.Lenient = true
	d, err = LoadOfficial(o)
	if err != nil {
		t.Fatal(err)
	}
	if d.Report.Skipped[ReasonImageMissing] != withImage || len(d.Problems) != 150-withImage {
		t.Errorf("lenient: %s, %d problems", d.Report.String(), len(d.Problems))
	}
	if len(d.Report.Examples[ReasonImageMissing]) != maxExamples {
		t.Errorf("examples: %v", d.Report.Examples)
	}
}

// TestProblemsTest reads the 4,241 real test problems with their images (stat only) and captions.
func TestProblemsTest(t *testing.T) {
	o := Options{
		Problems: assets.Require(t, assets.Path("scienceqa", "problems_test.json")),
		Splits:   assets.Require(t, assets.Path("scienceqa", "pid_splits.json")),
		Images:   assets.Require(t, assets.Path("scienceqa", "images")),
		Captions: assets.Require(t, assets.Path("scienceqa", "captions.json")),
	}
	d, err := LoadOfficial(o)
	if err != nil {
		t.Fatal(err)
	}
	images, graded, captioned := 0, 0, 0
	for _, p := range d.Problems {
		if p.HasImage() {
			images++
		}
		if p.Grade != "" {
			graded++
		}
		if p.Caption != "" {
			captioned++
		}
	}
	if len(d.Problems) != 4241 || images != 2017 || graded != 361 {
		t.Errorf("%d problems, %d with images, %d with a grade; want 4241, 2017, 361", len(d.Problems), images, graded)
	}
	if captioned < 2000 {
		t.Errorf("only %d problems have captions", captioned)
	}
	test, listed, err := d.Split("test")
	if err != nil || len(test) != 4241 || listed != 4241 {
		t.Errorf("Split(test) = %d of %d, %v", len(test), listed, err)
	}
	if train, listed, err := d.Split("train"); err != nil || len(train) != 0 || listed != 12726 {
		t.Errorf("Split(train) = %d of %d, %v", len(train), listed, err)
	}
	if _, _, err := d.Split("nope"); err == nil {
		t.Error("unknown split accepted")
	}
	for _, p := range d.Problems[:3] {
		if p.Split != "test" {
			t.Errorf("pid %s: split %q", p.PID, p.Split)
		}
	}
}

// badFixture returns a problems file with one record of every failure kind plus two good ones.
func badFixture(t *testing.T) (dir string) {
	dir = t.TempDir()
	recs := map[string]any{
		"1": map[string]any{"question": "ok?", "choices": []string{"a", "b"}, "answer": 1, "hint": "", "image": nil, "split": "test"},
		"2": map[string]any{"question": "img?", "choices": []string{"a", "b"}, "answer": 0, "hint": "h", "image": "image.png", "split": "test"},
		"3": map[string]any{"question": "one choice", "choices": []string{"a"}, "answer": 0, "hint": "", "image": nil, "split": "test"},
		"4": map[string]any{"question": "range", "choices": []string{"a", "b"}, "answer": 2, "hint": "", "image": nil, "split": "test"},
		"5": map[string]any{"question": "split", "choices": []string{"a", "b"}, "answer": 0, "hint": "", "image": nil, "split": "dev"},
		"6": map[string]any{"question": "no file", "choices": []string{"a", "b"}, "answer": 0, "hint": "", "image": "image.png", "split": "test"},
		"7": map[string]any{"question": "types", "choices": "a,b", "answer": 0, "split": "test"},
		"8": map[string]any{"question": "negative", "choices": []string{"a", "b"}, "answer": -1, "split": "test"},
	}
	data, _ := json.Marshal(recs)
	if err := os.WriteFile(filepath.Join(dir, "problems.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "images", "test", "2"), 0o755)
	os.WriteFile(filepath.Join(dir, "images", "test", "2", "image.png"), []byte("png"), 0o644)
	return dir
}

func TestValidation(t *testing.T) {
	dir := badFixture(t)
	o := Options{Problems: filepath.Join(dir, "problems.json")}
	_, err := LoadOfficial(o)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.File != o.Problems || ve.PID == "" { // the full path, not the base name
		t.Fatalf("strict load: %v", err)
	}
	if !strings.Contains(err.Error(), "problems.json: pid "+ve.PID) {
		t.Errorf("error %q does not name the file and pid", err)
	}
	o.Lenient = true
	d, err := LoadOfficial(o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Reason]int{ReasonFewChoices: 1, ReasonAnswerRange: 2, ReasonUnknownSplit: 1, ReasonImageMissing: 1, ReasonMalformed: 1}
	if !reflect.DeepEqual(d.Report.Skipped, want) || d.Report.Read != 8 || d.Report.Kept != 2 {
		t.Errorf("report %+v, want skipped %v of 8, 2 kept", d.Report, want)
	}
	if len(d.Problems) != 2 || d.Problems[0].PID != "1" || d.Problems[1].PID != "2" {
		t.Errorf("kept %v", d.Problems)
	}
	b, err := d.Problems[1].Image.ReadAll()
	if err != nil || string(b) != "png" {
		t.Errorf("ReadAll: %q %v", b, err)
	}
	if _, err := d.Problems[0].Image.Open(); err == nil {
		t.Error("Open of a problem without image succeeded")
	}
	if got := d.Report.String(); !strings.Contains(got, "8 records read, 2 kept") || !strings.Contains(got, "2 skipped (answer_out_of_range)") {
		t.Errorf("report string %q", got)
	}

	// A split field contradicting pid_splits.json.
	os.WriteFile(filepath.Join(dir, "splits.json"), []byte(`{"train":["1"],"test":["2"]}`), 0o644)
	o = Options{Problems: filepath.Join(dir, "problems.json"), Splits: filepath.Join(dir, "splits.json"), Lenient: true}
	if d, err = LoadOfficial(o); err != nil || d.Report.Skipped[ReasonSplitMismatch] != 1 {
		t.Errorf("split mismatch: %v %+v", err, d.Report)
	}
	for _, bad := range []string{`[]`, `{"1": 5`, ``} {
		os.WriteFile(filepath.Join(dir, "bad.json"), []byte(bad), 0o644)
		if _, err := LoadOfficial(Options{Problems: filepath.Join(dir, "bad.json")}); err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Missing metadata stays missing: records without grade/subject keep empty strings.
func TestMissingMetadata(t *testing.T) {
	ps, errs, err := ParseProblemsJSON("x.json", []byte(`{"7": {"question": "q", "choices": ["a","b"], "answer": 1, "hint": "", "image": null, "split": "test", "grade": null}}`))
	if err != nil || len(errs) != 0 || len(ps) != 1 {
		t.Fatal(err, errs)
	}
	p := ps[0]
	if p.Grade != "" || p.Subject != "" || p.Lecture != "" || p.Image.Has() {
		t.Errorf("%+v", p)
	}
	if cs := CategoriesOf(p); !reflect.DeepEqual(cs, []string{"NO", "Avg"}) {
		t.Errorf("categories %v", cs)
	}
}

func TestPIDOrder(t *testing.T) {
	ps := []*Problem{{PID: "test-10"}, {PID: "10"}, {PID: "test-2"}, {PID: "9"}, {PID: "abc"}, {PID: "test-1"}}
	SortByPID(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.PID)
	}
	if want := []string{"9", "10", "abc", "test-1", "test-2", "test-10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}
