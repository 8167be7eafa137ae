package scienceqa

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa/scienceqatest"
	"github.com/parquet-go/parquet-go"
)

// The Hugging Face schema as pyarrow writes it, from the one place the tests spell it out.
type (
	hfImage = scienceqatest.Image
	hfRow   = scienceqatest.Row
	hfMeta  = scienceqatest.Meta
)

var sp = scienceqatest.Str

type hfRowPID struct {
	PID string `parquet:"pid"`
	hfRow
}

func toHF(t *testing.T, p *Problem) hfRow {
	r := hfRow{Question: sp(p.Question), Choices: p.Choices, Answer: int8(p.Answer), Hint: sp(p.Hint),
		Meta: hfMeta{Task: sp(p.Task), Grade: sp(p.Grade), Subject: sp(p.Subject), Topic: sp(p.Topic),
			Category: sp(p.Category), Skill: sp(p.Skill), Lecture: sp(p.Lecture), Solution: sp(p.Solution)}}
	if p.Grade == "" {
		r.Grade = nil // a null metadata value must read back as ""
	}
	if p.Image.Has() {
		b, err := p.Image.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		r.Image = &hfImage{Bytes: b, Path: sp("image.png")}
	}
	return r
}

func writeParquet[T any](t *testing.T, path string, rows []T) {
	t.Helper()
	if err := scienceqatest.WriteParquet(path, rows); err != nil {
		t.Fatal(err)
	}
}

// realTestSample returns the sample's 50 test problems with their real image paths.
func realTestSample(t *testing.T) []*Problem {
	images := assets.Require(t, assets.Path("scienceqa", "images"))
	var ps []*Problem
	for _, p := range sampleProblems(t) {
		if p.Split != "test" {
			continue
		}
		if p.Image.Has() {
			p.Image.Path = filepath.Join(images, "test", p.PID, p.Image.Path)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestParquetRoundTrip(t *testing.T) {
	orig := realTestSample(t)
	dir := t.TempDir()
	rows := make([]hfRow, len(orig))
	withPID := make([]hfRowPID, len(orig))
	for i, p := range orig {
		rows[i] = toHF(t, p)
		withPID[i] = hfRowPID{PID: p.PID, hfRow: rows[i]}
	}
	// Two shards of the test split, and a validation file with the sample's val problems.
	writeParquet(t, filepath.Join(dir, "test-00000-of-00002.parquet"), rows[:20])
	writeParquet(t, filepath.Join(dir, "test-00001-of-00002.parquet"), rows[20:])
	var val []hfRow
	for _, p := range sampleProblems(t) {
		if p.Split == "val" && !p.Image.Has() {
			val = append(val, toHF(t, p))
		}
	}
	writeParquet(t, filepath.Join(dir, "validation-00000-of-00001.parquet"), val)

	d, err := LoadParquet(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	test, _, err := d.Split("test")
	if err != nil || len(test) != len(orig) {
		t.Fatalf("test split: %d problems, %v", len(test), err)
	}
	if vs, _, err := d.Split("val"); err != nil || len(vs) != len(val) || vs[0].PID != "val-0" {
		t.Errorf("val split: %d problems, %v", len(vs), err)
	}
	images := 0
	for i, got := range test {
		want := *orig[i]
		if got.PID != "test-"+strconv.Itoa(i) {
			t.Errorf("row %d: pid %s", i, got.PID)
		}
		if want.Image.Has() {
			images++
			b, _ := want.Image.ReadAll()
			if !bytes.Equal(got.Image.Bytes, b) || got.Image.Path != "image.png" {
				t.Errorf("pid %s: image bytes differ (%d vs %d) or path %q", want.PID, len(got.Image.Bytes), len(b), got.Image.Path)
			}
			rc, err := got.Image.Open()
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()
		} else if got.Image.Has() {
			t.Errorf("pid %s: image appeared", want.PID)
		}
		want.PID, want.Image = got.PID, got.Image
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got, &want)
		}
	}
	if images == 0 {
		t.Error("no image in the round trip")
	}

	// With a pid column, the pids are the file's.
	pidDir := t.TempDir()
	writeParquet(t, filepath.Join(pidDir, "test-00000-of-00001.parquet"), withPID)
	d, err = LoadParquet(pidDir, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range orig {
		got, ok := d.Get(p.PID)
		if !ok || got.Question != p.Question || got.Answer != p.Answer || got.Subject != p.Subject {
			t.Errorf("row %d: pid %s not read back: %+v", i, p.PID, got)
		}
	}
}

// Schemas that are not the Hugging Face one give errors naming the file and the column.
type noHint struct {
	Image    *hfImage `parquet:"image,optional"`
	Question string   `parquet:"question"`
	Choices  []string `parquet:"choices,list"`
	Answer   int64    `parquet:"answer"`
	scienceqatest.PlainMeta
}

type stringAnswer struct {
	Image    *hfImage `parquet:"image,optional"`
	Question string   `parquet:"question"`
	Choices  []string `parquet:"choices,list"`
	Answer   string   `parquet:"answer"`
	scienceqatest.PlainMeta
	Hint string `parquet:"hint"`
}

type stringChoices struct {
	Image    *hfImage `parquet:"image,optional"`
	Question string   `parquet:"question"`
	Choices  string   `parquet:"choices"`
	Answer   int64    `parquet:"answer"`
	scienceqatest.PlainMeta
	Hint string `parquet:"hint"`
}

type binaryImage struct {
	Image    []byte   `parquet:"image"`
	Question string   `parquet:"question"`
	Choices  []string `parquet:"choices,list"`
	Answer   int64    `parquet:"answer"`
	scienceqatest.PlainMeta
	Hint string `parquet:"hint"`
}

func TestParquetSchemaErrors(t *testing.T) {
	base := noHint{Question: "q", Choices: []string{"a", "b"}}
	cases := []struct {
		name, want string
		write      func(path string)
	}{
		{"missing column", `missing column "hint"`, func(p string) { writeParquet(t, p, []noHint{base}) }},
		{"answer as string", `column "answer" has type`, func(p string) { writeParquet(t, p, []stringAnswer{{Question: "q", Answer: "1"}}) }},
		{"choices as string", `column "choices" has type`, func(p string) { writeParquet(t, p, []stringChoices{{Question: "q", Choices: "a"}}) }},
		{"image as binary", `column "image" has type`, func(p string) { writeParquet(t, p, []binaryImage{{Question: "q"}}) }},
	}
	for _, c := range cases {
		dir := t.TempDir()
		c.write(filepath.Join(dir, "train-00000-of-00001.parquet"))
		_, err := LoadParquet(dir, false)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "train-00000-of-00001.parquet") {
			t.Errorf("%s: error %v, want %q naming the file", c.name, err, c.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "test-0.parquet"), []byte("PAR1 not really"), 0o644)
	if _, err := LoadParquet(dir, false); err == nil || !strings.Contains(err.Error(), "test-0.parquet") {
		t.Errorf("corrupt file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "weird-0.parquet"), nil, 0o644)
	if _, err := LoadParquetFiles([]string{filepath.Join(dir, "weird-0.parquet")}, false); err == nil || !strings.Contains(err.Error(), "split") {
		t.Errorf("unknown split prefix: %v", err)
	}
	if _, err := LoadParquet(t.TempDir(), false); err == nil {
		t.Error("empty folder accepted")
	}
}

// Invalid rows fail strictly with the file and pid, and are counted leniently.
func TestParquetValidation(t *testing.T) {
	dir := t.TempDir()
	rows := []hfRow{
		{Question: sp("ok"), Choices: []string{"a", "b"}, Answer: 1},
		{Question: sp("one"), Choices: []string{"a"}, Answer: 0},
		{Question: sp("range"), Choices: []string{"a", "b"}, Answer: 5},
		{Question: nil, Choices: []string{"a", "b"}, Answer: 0},
	}
	writeParquet(t, filepath.Join(dir, "test-00000-of-00001.parquet"), rows)
	_, err := LoadParquet(dir, false)
	if err == nil || !strings.Contains(err.Error(), "test-00000-of-00001.parquet: pid test-1") {
		t.Errorf("strict: %v", err)
	}
	d, err := LoadParquet(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Reason]int{ReasonFewChoices: 1, ReasonAnswerRange: 1, ReasonMalformed: 1}
	if !reflect.DeepEqual(d.Report.Skipped, want) || len(d.Problems) != 1 || d.Problems[0].PID != "test-0" {
		t.Errorf("lenient: %+v, %d problems", d.Report, len(d.Problems))
	}
}

// Older pyarrow writes list<string> as a 3-level group named list/item; such files read the same.
func TestParquetLegacyList(t *testing.T) {
	str := parquet.Optional(parquet.String())
	schema := parquet.NewSchema("schema", parquet.Group{
		"image":    parquet.Optional(parquet.Group{"bytes": parquet.Optional(parquet.Leaf(parquet.ByteArrayType)), "path": str}),
		"question": str, "hint": str, "task": str, "grade": str, "subject": str, "topic": str, "category": str,
		"skill": str, "lecture": str, "solution": str,
		"choices": parquet.Optional(parquet.Group{"list": parquet.Repeated(parquet.Group{"item": str})}),
		"answer":  parquet.Int(8),
	})
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema)
	row := schema.Deconstruct(nil, map[string]any{
		"question": "Which?", "hint": "h", "subject": "natural science",
		"choices": map[string]any{"list": []any{map[string]any{"item": "yes"}, map[string]any{"item": "no"}}},
		"answer":  int32(1),
		"image":   map[string]any{"bytes": []byte{0x89, 'P', 'N', 'G'}, "path": "x.png"},
	})
	if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "test-00000-of-00001.parquet"), buf.Bytes(), 0o644)
	d, err := LoadParquet(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	want := &Problem{PID: "test-0", Split: "test", Question: "Which?", Choices: []string{"yes", "no"}, Answer: 1, Hint: "h",
		Subject: "natural science", Image: Image{Path: "x.png", Bytes: []byte{0x89, 'P', 'N', 'G'}}}
	if len(d.Problems) != 1 || !reflect.DeepEqual(d.Problems[0], want) {
		t.Errorf("got %+v, want %+v", d.Problems, want)
	}
}

// TestAnyInt converts the integer types a parquet row may hold and refuses the rest (and unsigned values above 2⁶²).
func TestAnyInt(t *testing.T) {
	for _, v := range []any{int(-5), int8(-5), int16(-5), int32(-5), int64(-5)} {
		if n, ok := anyInt(v); !ok || n != -5 {
			t.Errorf("anyInt(%T -5) = %d, %v", v, n, ok)
		}
	}
	for _, v := range []any{uint8(200), uint16(200), uint32(200), uint64(200)} {
		if n, ok := anyInt(v); !ok || n != 200 {
			t.Errorf("anyInt(%T 200) = %d, %v", v, n, ok)
		}
	}
	if n, ok := anyInt(uint64(1 << 62)); !ok || n != 1<<62 {
		t.Errorf("anyInt(uint64 2⁶²) = %d, %v", n, ok)
	}
	for _, v := range []any{uint64(1<<62 + 1), 5.0, "5", []byte("5"), nil} {
		if n, ok := anyInt(v); ok {
			t.Errorf("anyInt(%T %v) = %d, accepted", v, v, n)
		}
	}
}
