package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

func TestRunFeaturesFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-data", "x"},
		{"-data", "x", "-clip", "y", "-layers", "8,a"},
		{"-data", "x", "-clip", "y", "-dtype", "int8"},
	} {
		if err := runFeatures(args); err == nil {
			t.Errorf("runFeatures(%q) gave no error", args)
		}
	}
}

func TestRunFeaturesTiny(t *testing.T) {
	tiny := assets.Require(t, assets.Golden("clip_tiny"))
	src := assets.Require(t, assets.Path("scienceqa", "images", "test"))
	paths, _ := filepath.Glob(filepath.Join(src, "*", "image.png"))
	sort.Strings(paths)
	if len(paths) < 3 {
		t.Skip("too few images")
	}
	data := t.TempDir()
	for _, p := range paths[:3] {
		d := filepath.Join(data, "images", "test", filepath.Base(filepath.Dir(p)))
		os.MkdirAll(d, 0o755)
		if err := os.Symlink(p, filepath.Join(d, "image.png")); err != nil {
			t.Fatal(err)
		}
	}
	cache := t.TempDir()
	args := []string{"-data", data, "-clip", tiny, "-cache", cache, "-layers", "2,4", "-batch", "2", "-quiet"}
	if err := runFeatures(args); err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "*", "*", "*.feat"))
	if len(entries) != 3 {
		t.Errorf("%d cache entries, want 3", len(entries))
	}
	keys, _ := filepath.Glob(filepath.Join(cache, "*", "key.json"))
	if len(keys) != 1 {
		t.Fatalf("%d key files", len(keys))
	}
	k, _ := os.ReadFile(keys[0])
	if !strings.Contains(string(k), "layers=2,4") {
		t.Errorf("key.json lacks the layers: %s", k)
	}
}
