package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path so that readers see either the old file or the complete new one,
// never a partial write: the bytes go to a temporary file in the same directory (rename is only atomic
// within one file system), are fsynced, and the temporary file is renamed over path. The directory is
// fsynced afterwards so the rename itself survives a crash. On any error the temporary file is removed
// and path is left untouched.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close() // Already closed on the success path; a second Close only returns an error.
			_ = os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; set the requested mode before it becomes visible.
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("results: write %s: chmod: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("results: write %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("results: write %s: close: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("results: write %s: rename: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable. Errors are ignored on purpose: some
// file systems and platforms refuse fsync on directories, and the data file itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// WriteJSONAtomic marshals v as indented JSON (two spaces, trailing newline) and writes it to path with
// WriteFileAtomic, mode 0644.
func WriteJSONAtomic(path string, v any) error {
	data, err := marshalIndent(v)
	if err != nil {
		return fmt.Errorf("results: encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, data, 0o644)
}

// marshalIndent is json.MarshalIndent without HTML escaping (so "<" in notes stays readable) and with
// a trailing newline.
func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
