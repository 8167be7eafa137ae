package results

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CompleteFile marks a finished run folder. It is written last, only after every final file has been checked,
// and lists each final file with its SHA-256, so a folder is complete exactly when complete.json exists and
// every file still matches it (VerifyComplete).
const CompleteFile = "complete.json"

// Manifest is the content of complete.json.
type Manifest struct {
	// Files maps each final file's name (relative to the run folder) to the hex SHA-256 of its bytes.
	Files map[string]string `json:"files"`
}

// FinalFile is a file a finished run must hold. Check, when set, verifies its content (for formats this
// package does not read, such as safetensors); otherwise the name's extension decides: .json must parse,
// .jsonl must be complete metrics lines, .png must decode its header, anything else must be non-empty.
type FinalFile struct {
	Name  string
	Check func(path string) error
}

// MarkComplete checks every final file in dir and then writes complete.json with their digests. Any missing
// or unreadable file is an error naming its path, and then no complete.json is written.
func MarkComplete(dir string, files []FinalFile) error {
	m := Manifest{Files: make(map[string]string, len(files))}
	for _, ff := range files {
		p := filepath.Join(dir, ff.Name)
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("results: run %s is not complete: %w", dir, err)
		}
		check := ff.Check
		if check == nil {
			check = func(string) error { return checkByExtension(ff.Name, data) }
		}
		if err := check(p); err != nil {
			return fmt.Errorf("results: run %s is not complete: %s: %w", dir, p, err)
		}
		m.Files[ff.Name] = digest(data)
	}
	return WriteJSONAtomic(filepath.Join(dir, CompleteFile), m)
}

// VerifyComplete reads dir's complete.json and checks that every file it lists is present with the same
// digest. Without complete.json it returns an error satisfying errors.Is(err, fs.ErrNotExist).
func VerifyComplete(dir string) (*Manifest, error) {
	path := filepath.Join(dir, CompleteFile)
	var m Manifest
	if err := ReadJSON(path, &m); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if len(m.Files) == 0 {
		return nil, fmt.Errorf("results: %s lists no files", path)
	}
	names := make([]string, 0, len(m.Files))
	for name := range m.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		got, err := fileDigest(p)
		if err != nil {
			// Not fs.ErrNotExist-wrapped on purpose: a complete run that lost a file is damaged, not unstarted.
			return nil, fmt.Errorf("results: run %s was completed but its file %s is unreadable now: %v", dir, p, err)
		}
		if got != m.Files[name] {
			return nil, fmt.Errorf("results: run %s was completed but its file %s has changed since (sha256 %s, recorded %s)",
				dir, p, got, m.Files[name])
		}
	}
	return &m, nil
}

func checkByExtension(name string, data []byte) error {
	if len(data) == 0 {
		return errors.New("empty file")
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		if !json.Valid(data) {
			return errors.New("not valid JSON")
		}
	case ".jsonl":
		if data[len(data)-1] != '\n' {
			return errors.New("ends in a partial line")
		}
		if _, err := ParseMetrics(bytes.NewReader(data), name); err != nil {
			return err
		}
	case ".png":
		if _, err := png.DecodeConfig(bytes.NewReader(data)); err != nil {
			return err
		}
	}
	return nil
}

func digest(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
