package results

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The atomic write itself (replace, no trace on failure, never partial) is tested in models/atomicfile; here the
// wrapper's own contract: it writes, and its errors say "results" and name the file.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := WriteFileAtomic(path, []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "data" {
		t.Errorf("read back %q, %v", got, err)
	}
	missing := filepath.Join(dir, "missing", "x")
	if err := WriteFileAtomic(missing, nil, 0o644); err == nil || !strings.HasPrefix(err.Error(), "results: ") || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %v, want one starting with results: and naming %s", err, missing)
	}
}

func TestWriteJSONAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.json")
	if err := WriteJSONAtomic(path, map[string]any{"b": 1, "a": "x<y"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": \"x<y\",\n  \"b\": 1\n}\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := WriteJSONAtomic(path, func() {}); err == nil {
		t.Error("encoding a func succeeded")
	}
}

// TestReadJSON: ReadJSON reads back what WriteJSONAtomic wrote; a missing file still matches fs.ErrNotExist and a
// file that is not JSON gives an error naming it.
func TestReadJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.json")
	want := map[string]int{"a": 1, "b": 2}
	if err := WriteJSONAtomic(path, want); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := ReadJSON(path, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %v, %v; want %v", got, err, want)
	}
	if err := ReadJSON(filepath.Join(dir, "none.json"), &got); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(bad, &got); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("malformed file: %v, want an error naming %s", err, bad)
	}
}
