package scienceqa

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const layoutProblems = `{
 "10": {"question": "Which is a mammal?", "choices": ["cat", "trout"], "answer": 0, "hint": "", "image": null, "split": "train"},
 "11": {"question": "Which is hot?", "choices": ["ice", "fire", "snow"], "answer": 1, "hint": "Look.", "image": "image.png", "split": "test"}
}`

const layoutSplits = `{"train": ["10"], "val": [], "test": ["11"]}`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func officialFolder(t *testing.T, problemsName string) string {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{problemsName: layoutProblems, "pid_splits.json": layoutSplits,
		"images/test/11/image.png": "png"})
	return dir
}

// writeParquetIn writes rows to path, making its folder.
func writeParquetIn(t *testing.T, path string, rows []hfRow) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeParquet(t, path, rows)
}

func hfRows(n int) []hfRow {
	var rows []hfRow
	for i := 0; i < n; i++ {
		rows = append(rows, hfRow{Question: sp("Q" + string(rune('a'+i))), Choices: []string{"x", "y"}, Answer: int8(i % 2), Hint: sp("")})
	}
	return rows
}

func mustOpen(t *testing.T, path string, o OpenOptions, layout Layout) (*Source, *Dataset) {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	if s.Layout != layout {
		t.Fatalf("Open(%s): layout %q, want %q (%s)", path, s.Layout, layout, s)
	}
	d, err := s.Load()
	if err != nil {
		t.Fatalf("Load(%s): %v", s, err)
	}
	return s, d
}

func TestOpenOfficial(t *testing.T) {
	for _, name := range []string{"problems.json", "problems_test.json"} {
		dir := officialFolder(t, name)
		s, d := mustOpen(t, dir, OpenOptions{}, LayoutOfficial)
		if s.Problems != filepath.Join(dir, name) || s.Splits != filepath.Join(dir, "pid_splits.json") ||
			s.Images != filepath.Join(dir, "images") || s.Captions != "" || len(d.Problems) != 2 {
			t.Errorf("%s: %s, %d problems", name, s, len(d.Problems))
		}
		if p, _ := d.Get("11"); p.Image.Path != filepath.Join(dir, "images", "test", "11", "image.png") {
			t.Errorf("%s: image %q", name, p.Image.Path)
		}
		want := "official: problems " + s.Problems + ", splits " + s.Splits + ", images " + s.Images + ", captions none"
		if s.String() != want {
			t.Errorf("String() = %q, want %q", s, want)
		}
	}
	// captions.json beside; no pid_splits.json: the problems' split fields.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"problems.json": layoutProblems, "captions.json": `{"captions": {"11": "A fire."}}`,
		"images/test/11/image.png": "png"})
	s, d := mustOpen(t, dir, OpenOptions{}, LayoutOfficial)
	if p, _ := d.Get("11"); s.Captions == "" || s.Splits != "" || p.Caption != "A fire." || len(d.Splits["test"]) != 1 {
		t.Errorf("%s: caption %q, splits %v", s, p.Caption, d.Splits)
	}
	if !strings.Contains(s.String(), "splits none") {
		t.Errorf("String() = %q", s)
	}
	// A problems .json given directly.
	mustOpen(t, filepath.Join(dir, "problems.json"), OpenOptions{}, LayoutOfficial)
}

func TestOpenParquet(t *testing.T) {
	// Parquet at the top of the folder.
	top := t.TempDir()
	writeParquetIn(t, filepath.Join(top, "test-00000-of-00001.parquet"), hfRows(3))
	s, d := mustOpen(t, top, OpenOptions{}, LayoutParquet)
	if len(d.Problems) != 3 || len(s.Parquet) != 1 || !strings.HasPrefix(s.String(), "parquet: "+top) {
		t.Errorf("%s: %d problems", s, len(d.Problems))
	}
	// A Hugging Face snapshot: data/<split>-*.parquet, README.md at the top.
	hf := t.TempDir()
	writeFiles(t, hf, map[string]string{"README.md": "---\nlicense: cc-by-nc-sa-4.0\n---\n", ".gitattributes": ""})
	writeParquetIn(t, filepath.Join(hf, "data", "train-00000-of-00001.parquet"), hfRows(2))
	writeParquetIn(t, filepath.Join(hf, "data", "validation-00000-of-00001.parquet"), hfRows(1))
	writeParquetIn(t, filepath.Join(hf, "data", "test-00000-of-00001.parquet"), hfRows(4))
	s, d = mustOpen(t, hf, OpenOptions{}, LayoutParquetData)
	if len(d.Problems) != 7 || len(d.Splits["train"]) != 2 || len(d.Splits["val"]) != 1 || len(d.Splits["test"]) != 4 {
		t.Errorf("%s: %d problems, splits %v", s, len(d.Problems), d.Splits)
	}
	// One file.
	file := filepath.Join(hf, "data", "test-00000-of-00001.parquet")
	s, d = mustOpen(t, file, OpenOptions{}, LayoutParquetFile)
	if len(d.Problems) != 4 || s.Parquet[0] != file {
		t.Errorf("%s: %d problems", s, len(d.Problems))
	}
}

func TestOpenErrors(t *testing.T) {
	empty := t.TempDir()
	mixed := officialFolder(t, "problems.json")
	writeParquetIn(t, filepath.Join(mixed, "test-00000-of-00001.parquet"), hfRows(1))
	both := t.TempDir()
	writeParquetIn(t, filepath.Join(both, "test-0.parquet"), hfRows(1))
	writeParquetIn(t, filepath.Join(both, "data", "test-0.parquet"), hfRows(1))
	twoProblems := officialFolder(t, "problems_test.json")
	writeFiles(t, twoProblems, map[string]string{"problems_sample150.json": "{}"})
	other := t.TempDir()
	writeFiles(t, other, map[string]string{"notes.txt": "", "images/test/1/image.png": "png", "pid_splits.json": layoutSplits})
	badName := t.TempDir()
	writeParquetIn(t, filepath.Join(badName, "weird-0.parquet"), hfRows(1))
	cases := []struct {
		path string
		o    OpenOptions
		want []string
	}{
		{empty, OpenOptions{}, []string{empty, "empty", "no ScienceQA data in " + empty}},
		{mixed, OpenOptions{}, []string{mixed, "several ScienceQA layouts", "problems.json", "1 *.parquet"}},
		{both, OpenOptions{}, []string{both, "1 *.parquet", "1 data/*.parquet"}},
		{twoProblems, OpenOptions{}, []string{twoProblems, "problems_sample150.json, problems_test.json"}},
		{other, OpenOptions{}, []string{other, "no ScienceQA data", "images/", "notes.txt", "pid_splits.json"}},
		{badName, OpenOptions{}, []string{"weird-0.parquet", "split"}},
		{filepath.Join(empty, "absent"), OpenOptions{}, []string{filepath.Join(empty, "absent")}},
		{filepath.Join(other, "notes.txt"), OpenOptions{}, []string{"notes.txt", "neither"}},
		{filepath.Join(both, "test-0.parquet"), OpenOptions{Splits: "pid_splits.json"}, []string{"official layout only"}},
		{empty, OpenOptions{Problems: filepath.Join(empty, "problems.json")}, []string{filepath.Join(empty, "problems.json")}},
	}
	for i, c := range cases {
		s, err := Open(c.path, c.o)
		if wantIs := map[int]error{0: ErrNoData, 1: ErrAmbiguous, 2: ErrAmbiguous, 3: ErrAmbiguous, 4: ErrNoData}[i]; wantIs != nil && !errors.Is(err, wantIs) {
			t.Errorf("Open(%s): %v is not %v", c.path, err, wantIs)
		}
		if err == nil {
			t.Errorf("Open(%s): no error (%s)", c.path, s)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%s): error %q does not say %q", c.path, err, w)
			}
		}
	}
}

func TestOpenOverrides(t *testing.T) {
	// -problems wins over the detection, even in a folder that also holds parquet files; pid_splits.json and
	// images/ come from the folder given.
	dir := officialFolder(t, "problems.json")
	writeParquetIn(t, filepath.Join(dir, "test-00000-of-00001.parquet"), hfRows(1))
	elsewhere := filepath.Join(t.TempDir(), "mine.json")
	writeFiles(t, filepath.Dir(elsewhere), map[string]string{"mine.json": layoutProblems, "splits.json": layoutSplits})
	s, d := mustOpen(t, dir, OpenOptions{Problems: elsewhere}, LayoutOfficial)
	if s.Problems != elsewhere || s.Splits != filepath.Join(dir, "pid_splits.json") || s.Images != filepath.Join(dir, "images") || len(d.Problems) != 2 {
		t.Errorf("%s", s)
	}
	splits := filepath.Join(filepath.Dir(elsewhere), "splits.json")
	if s, _ = mustOpen(t, dir, OpenOptions{Problems: elsewhere, Splits: splits}, LayoutOfficial); s.Splits != splits {
		t.Errorf("splits override: %s", s)
	}
	// Two problems files: the override picks one.
	two := officialFolder(t, "problems_test.json")
	writeFiles(t, two, map[string]string{"problems_other.json": "{}"})
	mustOpen(t, two, OpenOptions{Problems: filepath.Join(two, "problems_test.json")}, LayoutOfficial)
}
