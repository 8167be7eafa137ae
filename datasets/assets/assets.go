// Package assets locates the project's shared data, models and golden reference files, which live outside the
// repository (by default in ../shared next to the checkout) and are never copied into it.
//
// Overrides: $SQA_ASSETS names the assets folder (holding scienceqa/ and models/); $SQA_GOLDEN names the golden
// folder. Without them, the folders are looked up as ../shared/assets and ../shared/golden relative to the
// repository root (the folder with go.mod), found by walking up from the working directory.
package assets

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// EnvAssets and EnvGolden are the environment variables that override the default locations.
const (
	EnvAssets = "SQA_ASSETS"
	EnvGolden = "SQA_GOLDEN"
)

// RepoRoot returns the repository root: the nearest folder at or above the working directory holding go.mod (the
// working directory itself when there is none). Commands use it for default output folders such as results/.
func RepoRoot() string { return repoRoot() }

// repoRoot walks up from the working directory to the folder holding go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// Dir returns the assets folder ($SQA_ASSETS, or ../shared/assets beside the repository root).
func Dir() string {
	if d := os.Getenv(EnvAssets); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), "..", "shared", "assets")
}

// GoldenDir returns the golden reference folder ($SQA_GOLDEN, or ../shared/golden beside the repository root;
// if only $SQA_ASSETS is set, its sibling folder "golden").
func GoldenDir() string {
	if d := os.Getenv(EnvGolden); d != "" {
		return d
	}
	if d := os.Getenv(EnvAssets); d != "" {
		return filepath.Join(filepath.Dir(filepath.Clean(d)), "golden")
	}
	return filepath.Join(repoRoot(), "..", "shared", "golden")
}

// Path joins elements under the assets folder.
func Path(elem ...string) string { return filepath.Join(append([]string{Dir()}, elem...)...) }

// Golden joins elements under the golden folder.
func Golden(elem ...string) string { return filepath.Join(append([]string{GoldenDir()}, elem...)...) }

// Require returns path if it exists; otherwise it skips the test with a message saying what is missing and how to
// point the tests at it.
func Require(tb testing.TB, path string) string {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("skipping: %s is not available (%v); set $%s (assets) or $%s (golden) to the folders of ../shared",
			path, err, EnvAssets, EnvGolden)
	}
	return path
}

// ReadJSON decodes the JSON file at path (a golden or data file; Require it first where it may be missing) into
// v, failing the test when the file cannot be read or decoded.
func ReadJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("reading %s: %v", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		tb.Fatalf("parsing %s: %v", path, err)
	}
}

// WantErr fails tb unless err is an error whose message mentions every one of parts; what names the case.
func WantErr(tb testing.TB, err error, what string, parts ...string) {
	tb.Helper()
	if err == nil {
		tb.Errorf("%s: no error", what)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			tb.Errorf("%s: error %q does not mention %q", what, err, p)
		}
	}
}

// Missing returns an error describing a missing file, for commands (not tests).
func Missing(path, what string) error {
	return fmt.Errorf("%s not found at %s: provide it or set $%s to the assets folder", what, path, EnvAssets)
}

// MaxAbsDiff is the measure golden tests compare with: the largest |a[i] − b[i]|, or +Inf when the lengths differ
// or any difference is NaN (so a broken result can never pass a tolerance).
func MaxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}
