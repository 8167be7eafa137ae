// Package atomicfile writes files so that a reader sees either the old file or the complete new one,
// never a partial write. It is the project's one implementation of write-to-temporary + fsync + rename
// (+ directory fsync); results, the checkpoint writers (safetensors, torchpth) and the CLIP feature cache
// all write through it. It imports nothing from the project, so any package may use it.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data to path with mode perm, atomically (see WriteFunc).
func Write(path string, data []byte, perm fs.FileMode) error {
	return WriteFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc writes path atomically with mode perm, streaming its content through fill (for files too
// large to hold in memory twice, such as checkpoints). The bytes go to a temporary file in the same
// directory (rename is only atomic within one file system), are fsynced, and the temporary file is
// renamed over path; the directory is fsynced afterwards so that the rename itself survives a crash.
// On any error, fill's included, the temporary file is removed and path is left untouched. Errors
// name path.
func WriteFunc(path string, perm fs.FileMode, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close() // Already closed on the success path; a second Close only returns an error.
			_ = os.Remove(tmpName)
		}
	}()
	// CreateTemp makes the file 0600; set the requested mode before it becomes visible.
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: chmod: %w", path, err)
	}
	if err = fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
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
