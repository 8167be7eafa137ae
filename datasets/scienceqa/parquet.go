package scienceqa

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Columns of the Hugging Face ScienceQA parquet files (derek-thomas/ScienceQA). Every one is required;
// their values may be null (a null metadata value reads as "", a null image as no image).
var parquetStringColumns = []string{"question", "hint", "task", "grade", "subject", "topic", "category", "skill",
	"lecture", "solution"}

// PIDColumn is the optional parquet column whose value, when present, is used as the pid.
const PIDColumn = "pid"

// parquetSplit maps a file name's split prefix to the official split name.
func parquetSplit(file string) (string, error) {
	base := filepath.Base(file)
	prefix, _, ok := strings.Cut(base, "-")
	if !ok {
		prefix = strings.TrimSuffix(base, ".parquet")
	}
	switch prefix {
	case "train", "test", "val":
		return prefix, nil
	case "validation":
		return "val", nil
	}
	return "", fmt.Errorf("scienceqa: %s: cannot tell the split from the file name (want train-*, validation-*, val-* or test-*)", file)
}

// LoadParquet reads every <split>-*.parquet file in dir (Hugging Face layout; a data/ subfolder is searched
// too when dir has none) and validates the problems as LoadOfficial does. Rows without a pid column get the pid
// "<split>-<index>", the index counting rows from 0 over the split's files in name order.
func LoadParquet(dir string, lenient bool) (*Dataset, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err == nil && len(files) == 0 {
		files, err = filepath.Glob(filepath.Join(dir, "data", "*.parquet"))
	}
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("scienceqa: no *.parquet files in %s", dir)
	}
	return LoadParquetFiles(files, lenient)
}

// LoadParquetFiles reads the given parquet files (each named <split>-*.parquet); see LoadParquet.
func LoadParquetFiles(files []string, lenient bool) (*Dataset, error) {
	files = append([]string(nil), files...)
	sort.Strings(files)
	var rep Report
	var all []*Problem
	next := map[string]int{} // split → index of its next row
	seen := map[string]string{}
	for _, file := range files {
		split, err := parquetSplit(file)
		if err != nil {
			return nil, err
		}
		rows, err := readParquetFile(file, split, next[split])
		if err != nil {
			return nil, err
		}
		next[split] += len(rows)
		rep.Read += len(rows)
		name := file // errors name the full path
		for _, r := range rows {
			e := r.err
			if e == nil {
				e = validate(name, r.p, false)
			}
			if e == nil {
				if other, dup := seen[r.p.PID]; dup {
					e = &ValidationError{File: name, PID: r.p.PID, Reason: ReasonDuplicatePID, Msg: "pid already read from " + other}
				}
			}
			if e != nil {
				if !lenient {
					return nil, e
				}
				rep.add(e)
				continue
			}
			seen[r.p.PID] = name
			all = append(all, r.p)
		}
	}
	rep.Kept = len(all)
	return newDataset(all, nil, rep), nil
}

// parquetRow is one decoded row: a problem, or why it could not be decoded.
type parquetRow struct {
	p   *Problem
	err *ValidationError
}

func readParquetFile(path, split string, first int) ([]parquetRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %w", err)
	}
	return readParquetRows(f, st.Size(), path, split, first)
}

// ReadParquet reads the problems of one parquet file in the Hugging Face schema; name is used in errors and
// split is the split of every row. Rows are given pids "<split>-<first+row>" unless the file has a pid column.
// A missing column or one of the wrong type is an error; a row that does not decode is returned in errs
// (ReasonMalformed). The problems are not validated (LoadParquetFiles does that).
func ReadParquet(r io.ReaderAt, size int64, name, split string, first int) (problems []*Problem, errs []*ValidationError, err error) {
	rows, err := readParquetRows(r, size, name, split, first)
	if err != nil {
		return nil, nil, err
	}
	for _, row := range rows {
		if row.err != nil {
			errs = append(errs, row.err)
		} else {
			problems = append(problems, row.p)
		}
	}
	return problems, errs, nil
}

// readParquetRows decodes the rows of a parquet file in order (see ReadParquet).
func readParquetRows(r io.ReaderAt, size int64, name, split string, first int) (rows []parquetRow, err error) {
	// parquet-go panics on some malformed inputs; no panic may cross this package's API.
	defer func() {
		if rec := recover(); rec != nil {
			rows, err = nil, fmt.Errorf("scienceqa: %s: corrupt parquet file: %v", name, rec)
		}
	}()
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: %w", name, err)
	}
	hasPID, err := checkParquetSchema(f.Schema())
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: %w", name, err)
	}
	config, err := parquet.NewReaderConfig()
	if err != nil {
		return nil, fmt.Errorf("scienceqa: %s: %w", name, err)
	}
	reader := parquet.NewReader(f, config)
	defer reader.Close()
	for i := 0; ; i++ {
		row := map[string]any{}
		if err := reader.Read(&row); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("scienceqa: %s: row %d: %w", name, i, err)
		}
		pid := split + "-" + strconv.Itoa(first+i)
		malformed := func(msg string) {
			rows = append(rows, parquetRow{err: &ValidationError{File: name, PID: pid, Reason: ReasonMalformed, Msg: msg}})
		}
		if hasPID {
			v, ok := anyString(row[PIDColumn])
			if n, isInt := anyInt(row[PIDColumn]); isInt {
				v, ok = strconv.FormatInt(n, 10), true
			}
			if !ok || v == "" {
				malformed("null or empty pid")
				continue
			}
			pid = v
		}
		p, msg := parquetProblem(row)
		if msg != "" {
			malformed(msg)
			continue
		}
		p.PID, p.Split = pid, split
		rows = append(rows, parquetRow{p: p})
	}
	return rows, nil
}

// parquetProblem converts one decoded row; msg says what is wrong with it.
func parquetProblem(row map[string]any) (p *Problem, msg string) {
	p = &Problem{}
	strs := map[string]*string{"question": &p.Question, "hint": &p.Hint, "task": &p.Task, "grade": &p.Grade,
		"subject": &p.Subject, "topic": &p.Topic, "category": &p.Category, "skill": &p.Skill,
		"lecture": &p.Lecture, "solution": &p.Solution}
	for col, dst := range strs {
		v := row[col]
		if v == nil {
			continue
		}
		s, ok := anyString(v)
		if !ok {
			return nil, fmt.Sprintf("column %s: %T is not a string", col, v)
		}
		*dst = s
	}
	if row["question"] == nil {
		return nil, "null question"
	}
	answer, ok := anyInt(row["answer"])
	if !ok {
		return nil, fmt.Sprintf("column answer: %v is not an integer", row["answer"])
	}
	p.Answer = int(answer)
	if row["choices"] != nil {
		cs, ok := stringList(row["choices"])
		if !ok {
			return nil, fmt.Sprintf("column choices: %v is not a list of strings", row["choices"])
		}
		p.Choices = cs
	}
	switch im := row["image"].(type) {
	case nil:
	case map[string]any:
		if b, ok := anyBytes(im["bytes"]); ok && len(b) > 0 {
			p.Image.Bytes = b
			p.Image.Path, _ = anyString(im["path"])
		}
	default:
		return nil, fmt.Sprintf("column image: %T is not a struct", im)
	}
	return p, ""
}

// stringList reads a decoded list of strings. A LIST-annotated column decodes to []any of strings; a 3-level list
// without the annotation (as older writers leave it) decodes to {"list": [{"element"|"item": s}, ...]}.
func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if m, ok := e.(map[string]any); ok && len(m) == 1 {
				for _, inner := range m {
					e = inner
				}
			}
			s, ok := anyString(e)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case map[string]any:
		if len(x) == 1 {
			for _, inner := range x {
				return stringList(inner)
			}
		}
	}
	return nil, false
}

func anyString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

func anyBytes(v any) ([]byte, bool) {
	switch s := v.(type) {
	case string:
		return []byte(s), true
	case []byte:
		return append([]byte(nil), s...), true
	}
	return nil, false
}

// anyInt converts a value of any integer type; ok is false for other types and for unsigned values above 2⁶².
func anyInt(v any) (n int64, ok bool) {
	switch r := reflect.ValueOf(v); {
	case r.CanInt():
		return r.Int(), true
	case r.CanUint() && r.Uint() <= 1<<62:
		return int64(r.Uint()), true
	}
	return 0, false
}

// checkParquetSchema checks that every Hugging Face column is present with a compatible type, and says whether
// there is a pid column.
func checkParquetSchema(s *parquet.Schema) (hasPID bool, err error) {
	fields := map[string]parquet.Field{}
	for _, f := range s.Fields() {
		fields[f.Name()] = f
	}
	get := func(col string) (parquet.Field, error) {
		f, ok := fields[col]
		if !ok {
			return nil, fmt.Errorf("missing column %q (the Hugging Face ScienceQA schema has image, question, choices, answer, hint, %s)",
				col, strings.Join(parquetStringColumns[2:], ", "))
		}
		return f, nil
	}
	isString := func(n parquet.Node) bool { return n.Leaf() && !n.Repeated() && n.Type().Kind() == parquet.ByteArray }
	for _, col := range parquetStringColumns {
		f, err := get(col)
		if err != nil {
			return false, err
		}
		if !isString(f) {
			return false, fmt.Errorf("column %q has type %s, want a string (binary)", col, nodeType(f))
		}
	}
	f, err := get("answer")
	if err != nil {
		return false, err
	}
	if !f.Leaf() || f.Repeated() || (f.Type().Kind() != parquet.Int32 && f.Type().Kind() != parquet.Int64) {
		return false, fmt.Errorf("column \"answer\" has type %s, want an integer (int32 or int64)", nodeType(f))
	}
	if f, err = get("choices"); err != nil {
		return false, err
	}
	// A list is a LIST group (3-level: choices.list.element or .item) or, in the legacy 2-level form, a repeated
	// leaf; either way a single path ends at a binary leaf with a repeated node on the way.
	repeated, n := f.Repeated(), parquet.Node(f)
	for !n.Leaf() && len(n.Fields()) == 1 {
		n = n.Fields()[0]
		repeated = repeated || n.Repeated()
	}
	if !n.Leaf() || !repeated || n.Type().Kind() != parquet.ByteArray {
		return false, fmt.Errorf("column \"choices\" has type %s, want a list of strings", nodeType(f))
	}
	if f, err = get("image"); err != nil {
		return false, err
	}
	if f.Leaf() || f.Repeated() {
		return false, fmt.Errorf("column \"image\" has type %s, want a struct {bytes binary, path string}", nodeType(f))
	}
	sub := map[string]parquet.Field{}
	for _, c := range f.Fields() {
		sub[c.Name()] = c
	}
	for _, c := range []string{"bytes", "path"} {
		if n, ok := sub[c]; !ok || !isString(n) {
			return false, fmt.Errorf("column \"image\" has type %s, want a struct {bytes binary, path string}", nodeType(f))
		}
	}
	if f, ok := fields[PIDColumn]; ok {
		if !f.Leaf() || f.Repeated() {
			return false, fmt.Errorf("column %q has type %s, want a string or an integer", PIDColumn, nodeType(f))
		}
		if k := f.Type().Kind(); k != parquet.ByteArray && k != parquet.Int32 && k != parquet.Int64 {
			return false, fmt.Errorf("column %q has type %s, want a string or an integer", PIDColumn, nodeType(f))
		}
		hasPID = true
	}
	return hasPID, nil
}

// nodeType describes a schema node for error messages.
func nodeType(n parquet.Node) string {
	return strings.Join(strings.Fields(n.String()), " ")
}
