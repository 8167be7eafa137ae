package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/results"
)

// imageDataDir writes an official-layout folder with n image problems of the shared test file, their images
// linked from the shared folder, except the first pid's, which is garbage bytes. It returns the folder and that pid.
func imageDataDir(t *testing.T, n int) (string, string) {
	t.Helper()
	root := assets.Path("scienceqa")
	assets.Require(t, filepath.Join(root, "problems_test.json"))
	data, err := os.ReadFile(filepath.Join(root, "problems_test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Image *string `json:"image"`
		Split string  `json:"split"`
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &all) != nil || json.Unmarshal(data, &raw) != nil {
		t.Fatal("problems_test.json does not parse")
	}
	var pids []string
	for pid, p := range all {
		if p.Image != nil && *p.Image != "" {
			if _, err := os.Stat(filepath.Join(root, "images", p.Split, pid, *p.Image)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	sort.Strings(pids)
	if len(pids) < n {
		t.Skipf("only %d images in the shared folder", len(pids))
	}
	pids = pids[:n]
	dir := t.TempDir()
	sub := map[string]json.RawMessage{}
	for i, pid := range pids {
		sub[pid] = raw[pid]
		p := all[pid]
		dst := filepath.Join(dir, "images", p.Split, pid, *p.Image)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			err = os.WriteFile(dst, []byte("this is not a PNG file"), 0o644)
		} else {
			err = os.Symlink(filepath.Join(root, "images", p.Split, pid, *p.Image), dst)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out, _ := json.Marshal(sub)
	if err := os.WriteFile(filepath.Join(dir, "problems.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, pids[0]
}

// TestUndecodableImage: an image that does not decode is an error naming its file and pid; with -skip-bad-images
// the run goes on and records every skipped pid in summary.json and in the table's footnote.
func TestUndecodableImage(t *testing.T) {
	dir, bad := imageDataDir(t, 10)
	cfg := tinyConfig(t)
	cfg.Data.Dir, cfg.Data.ProblemsFile, cfg.Data.SplitsFile = dir, "", ""
	cfg.Data.TrainLimit, cfg.Data.EvalLimit = 0, 0
	cfg.Train.Epochs = 1
	cfg.Vision.Modality, cfg.Vision.CLIP = Multimodal, "random"
	cfg.FeatureCache = t.TempDir()
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil {
		t.Fatal("a run with an undecodable image went ahead")
	}
	if !strings.Contains(err.Error(), "pid "+bad) || !strings.Contains(err.Error(), filepath.Join(dir, "images")) {
		t.Errorf("error does not name the pid %s and its file: %v", bad, err)
	}
	cfg.SkipBadImages = true
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Summary.SkippedImages, []string{bad}) {
		t.Errorf("summary skipped images %v, want [%s]", res.Summary.SkippedImages, bad)
	}
	s, err := results.ReadSummary(res.Dir)
	if err != nil || !reflect.DeepEqual(s.SkippedImages, []string{bad}) {
		t.Errorf("summary.json: %v, %v", s, err)
	}
	table, _ := os.ReadFile(filepath.Join(res.Dir, TableFile+".md"))
	if !strings.Contains(string(table), bad) {
		t.Errorf("the table's footnote does not name %s:\n%s", bad, table)
	}
}
