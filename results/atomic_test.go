package results

import (
	"os"
	"path/filepath"
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
