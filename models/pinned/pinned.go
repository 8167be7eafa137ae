// Package pinned verifies installed files against the SHA-256 pinned beside them, and hashes each file once per
// process.
//
// .ci/install-model.sh writes source.json next to each model it installs (its "file_sha256" is the sha256 of the
// installed file) and .ci/install-pjrt-cpu.sh writes plugin.json next to the XLA CPU plugin ("plugin_sha256").
// The installers check the hash once; a file that changes afterwards (a flipped bit on disk, a partial copy, an
// edit) would otherwise be loaded as if it were the pinned one: a run finishes with the same id and different
// numbers, or a truncated plugin takes the process down inside dlopen. The loaders call VerifyModel (and
// models/device calls Verify for the plugin) before using a file.
//
// Hashes are cached per process, keyed by the file's absolute path, size, modification time and inode: each file is
// hashed once however many times the run start, the tokenizer and the model loader ask. A file rewritten in place
// changes its size or mtime, and is hashed again (unless the rewrite falls within the same file-system timestamp
// tick: then the next process sees it). Hashed reports what a process spent: a default run start hashes about
// 300 MB (the 98 MB SmolLM2 GGUF, the 200 MB XLA CPU plugin, the data files) in 0.33-0.37 s on a loaded 2-core
// EPYC, 0.09-0.19 s of it the GGUF. Hashes are deliberately not cached across processes: a cache keyed by size and
// mtime would pass a file corrupted in place without either changing, the damage this check is for.
package pinned

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// SourceFile is the provenance file .ci/install-model.sh writes beside an installed model.
const SourceFile = "source.json"

// Source is the part of source.json that verification reads.
type Source struct {
	// Name is the pinned model's name, the argument of .ci/install-model.sh.
	Name string `json:"name"`
	// File is the file's path inside its wheel; its base name is the installed file's name.
	File string `json:"file"`
	// FileSHA256 is the hex sha256 of the installed file.
	FileSHA256 string `json:"file_sha256"`
}

// CorruptError is a pinned file whose content no longer has its pinned hash.
type CorruptError struct {
	Path string
	// Got and Want are hex sha256 digests.
	Got, Want string
	// PinnedIn is the file that pins Want (source.json, plugin.json).
	PinnedIn string
	// Reinstall is the command that restores the file.
	Reinstall string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is corrupt or changed: its sha256 is %s, %s pins %s: reinstall with `%s`",
		e.Path, e.Got, e.PinnedIn, e.Want, e.Reinstall)
}

type fileID struct {
	path       string
	size       int64
	mtime, ino uint64
}

type digestEntry struct {
	once sync.Once
	sum  string
	err  error
}

var (
	cacheMu sync.Mutex
	cache   = map[fileID]*digestEntry{}
	// hashed is what this process has actually hashed (cache hits excluded); hashed.Files also tells tests that
	// the cache answered repeated calls.
	hashed HashStats
)

// HashStats is what a process spent hashing files (cache hits excluded).
type HashStats struct {
	// Files and Bytes count the files hashed and their sizes; Seconds is the wall time spent reading and hashing
	// them (summed over concurrent hashes).
	Files   int
	Bytes   int64
	Seconds float64
}

// Hashed returns what this process has hashed so far (cache hits excluded); the difference of two calls is what
// was hashed between them.
func Hashed() HashStats {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	return hashed
}

// SHA256 returns the hex sha256 of the file at path, hashing it at most once per process for a given path, size,
// modification time and inode. Concurrent callers of the same file wait for one hash.
func SHA256(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("hashing %s: not a regular file", path)
	}
	id := fileID{path: abs, size: st.Size(), mtime: uint64(st.ModTime().UnixNano())}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.ino = uint64(sys.Ino)
	}
	cacheMu.Lock()
	e := cache[id]
	if e == nil {
		e = &digestEntry{}
		cache[id] = e
	}
	cacheMu.Unlock()
	e.once.Do(func() {
		e.sum, e.err = hashFile(abs, st.Size())
		if e.err != nil {
			cacheMu.Lock()
			delete(cache, id) // an I/O error is not remembered: the next call tries again
			cacheMu.Unlock()
		}
	})
	return e.sum, e.err
}

func hashFile(path string, size int64) (string, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	if n != size {
		return "", fmt.Errorf("hashing %s: read %d bytes, the file had %d when hashing began (it is being written?)", path, n, size)
	}
	cacheMu.Lock()
	hashed.Files++
	hashed.Bytes += n
	hashed.Seconds += time.Since(start).Seconds()
	cacheMu.Unlock()
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify checks that the file at path has the hex sha256 want (pinned in pinnedIn); a mismatch is a
// *CorruptError carrying reinstall, the command that restores the file.
func Verify(path, want, pinnedIn, reinstall string) error {
	got, err := SHA256(path)
	if err != nil {
		return err
	}
	if got != want {
		return &CorruptError{Path: path, Got: got, Want: want, PinnedIn: pinnedIn, Reinstall: reinstall}
	}
	return nil
}

// VerifyModel checks a model file against the source.json beside it, when there is one that describes it (its
// "file" has the same base name): the file's sha256 must be the pinned "file_sha256", else the error is a
// *CorruptError naming `bash .ci/install-model.sh <name>`. A file without a source.json beside it is not a
// pinned install and passes unchecked; a source.json that cannot be read or has no hash is an error (the install
// is damaged).
func VerifyModel(path string) error {
	srcPath := filepath.Join(filepath.Dir(path), SourceFile)
	data, err := os.ReadFile(srcPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	reinstall := "bash .ci/install-model.sh <name>"
	if err != nil {
		return fmt.Errorf("%s: %w (the install beside it is damaged: reinstall with `%s`)", srcPath, err, reinstall)
	}
	var s Source
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%s: %w (the install is damaged: reinstall with `%s`)", srcPath, err, reinstall)
	}
	if s.File == "" || filepath.Base(s.File) != filepath.Base(path) {
		return nil // source.json describes another file of the folder
	}
	if s.Name != "" {
		reinstall = "bash .ci/install-model.sh " + s.Name
	}
	if len(s.FileSHA256) != 64 {
		return fmt.Errorf("%s: no valid file_sha256 for %s (the install is damaged: reinstall with `%s`)", srcPath, path, reinstall)
	}
	return Verify(path, s.FileSHA256, srcPath, reinstall)
}
