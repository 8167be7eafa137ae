package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// readBack returns path's content and permission bits.
func readBack(t *testing.T, path string) (string, fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(got), st.Mode().Perm()
}

// dirNames lists the names in dir (to spot leftover temporary files).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFuncStreamsAndSetsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.bin")
	err := WriteFunc(path, 0o644, func(w io.Writer) error {
		for i := 0; i < 3; i++ {
			if _, err := io.WriteString(w, "chunk;"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, perm := readBack(t, path); got != "chunk;chunk;chunk;" || perm != 0o644 {
		t.Errorf("content %q mode %v, want three chunks and 0644", got, perm)
	}
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := Write(path, []byte("first"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("second, longer"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, perm := readBack(t, path); got != "second, longer" || perm != 0o640 {
		t.Errorf("content %q mode %v, want the second content and 0640", got, perm)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "a.txt" {
		t.Errorf("directory holds %v, want only a.txt (no temp files)", names)
	}
}

func TestWriteFuncFillErrorLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFunc(path, 0o644, func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v: want the fill error, naming %s", err, path)
	}
	if got, _ := readBack(t, path); got != "old" {
		t.Errorf("content %q after a failed write, want the old content", got)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v after a failed write, want only a.txt", names)
	}
}

func TestWriteFailureLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory: the rename fails after the temp file was written.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Write(target, []byte("data"), 0o644)
	if err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	if !strings.Contains(err.Error(), target) {
		t.Errorf("error %q does not name the file", err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "target" {
		t.Errorf("directory holds %v after a failed write, want only target", names)
	}
	// A missing directory fails before anything is created.
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// TestWriteNeverPartial rewrites a file with two different contents while a reader reads it concurrently:
// every read must see one of the two complete contents.
func TestWriteNeverPartial(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.bin")
	a := bytes.Repeat([]byte("a"), 300_000)
	b := bytes.Repeat([]byte("b"), 200_000)
	if err := Write(path, a, 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := os.ReadFile(path)
			if err != nil {
				bad.Add(1)
				continue
			}
			reads.Add(1)
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				bad.Add(1)
			}
		}
	}()
	for i := 0; i < 40; i++ {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := Write(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of %d reads saw a partial or missing file", bad.Load(), reads.Load()+bad.Load())
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only big.bin", names)
	}
}
