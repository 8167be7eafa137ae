// Package scienceqatest writes ScienceQA parquet files in the Hugging Face schema, for the tests of the readers
// and of the pipeline (a snapshot folder built from a few problems), so that the schema is spelled out once.
package scienceqatest

import (
	"bytes"
	"fmt"
	"os"

	"github.com/parquet-go/parquet-go"
)

// Image is the parquet image struct: PNG bytes and a file name, the whole struct null for text-only problems.
type Image struct {
	Bytes []byte  `parquet:"bytes,optional"`
	Path  *string `parquet:"path,optional"`
}

// Meta holds the metadata columns as pyarrow writes them: nullable strings.
type Meta struct {
	Task     *string `parquet:"task,optional"`
	Grade    *string `parquet:"grade,optional"`
	Subject  *string `parquet:"subject,optional"`
	Topic    *string `parquet:"topic,optional"`
	Category *string `parquet:"category,optional"`
	Skill    *string `parquet:"skill,optional"`
	Lecture  *string `parquet:"lecture,optional"`
	Solution *string `parquet:"solution,optional"`
}

// PlainMeta holds the same columns as required strings, for schemas that differ from the Hugging Face one in
// another column (the readers' error tests).
type PlainMeta struct {
	Task     string `parquet:"task"`
	Grade    string `parquet:"grade"`
	Subject  string `parquet:"subject"`
	Topic    string `parquet:"topic"`
	Category string `parquet:"category"`
	Skill    string `parquet:"skill"`
	Lecture  string `parquet:"lecture"`
	Solution string `parquet:"solution"`
}

// Row is a row of the Hugging Face ScienceQA files, every column of their schema: nullable strings and image
// struct, a list of strings, an 8-bit integer answer.
type Row struct {
	Image    *Image   `parquet:"image,optional"`
	Question *string  `parquet:"question,optional"`
	Choices  []string `parquet:"choices,list"`
	Answer   int8     `parquet:"answer"`
	Hint     *string  `parquet:"hint,optional"`
	Meta
}

// Str returns a pointer to s (a non-null string cell).
func Str(s string) *string { return &s }

// WriteParquet writes rows of any struct type as one parquet file at path.
func WriteParquet[T any](path string, rows []T) error {
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		return fmt.Errorf("scienceqatest: write %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("scienceqatest: %w", err)
	}
	return nil
}
