package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
	"github.com/adapterlab/llama-adapter/datasets/scienceqa/scienceqatest"
)

// hfSnapshot writes a folder laid out as a Hugging Face ScienceQA snapshot — README.md and
// data/{train,validation,test}-00000-of-00001.parquet — from text-only problems of the shared test file.
func hfSnapshot(t *testing.T, perSplit int) string {
	t.Helper()
	src := assets.Require(t, assets.Path("scienceqa", "problems_test.json"))
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Question string   `json:"question"`
		Choices  []string `json:"choices"`
		Answer   int      `json:"answer"`
		Hint     string   `json:"hint"`
		Image    *string  `json:"image"`
	}
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	pids := make([]string, 0, len(all))
	for pid, p := range all {
		if p.Image == nil || *p.Image == "" {
			pids = append(pids, pid)
		}
	}
	sort.Strings(pids)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# ScienceQA (test snapshot)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, split := range []string{"train", "validation", "test"} {
		var rows []scienceqatest.Row
		for _, pid := range pids[i*perSplit : (i+1)*perSplit] {
			p := all[pid]
			rows = append(rows, scienceqatest.Row{Question: scienceqatest.Str(p.Question), Choices: p.Choices,
				Answer: int8(p.Answer), Hint: scienceqatest.Str(p.Hint)})
		}
		if err := scienceqatest.WriteParquet(filepath.Join(dir, "data", split+"-00000-of-00001.parquet"), rows); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHFSnapshotRunsThroughThePipeline: a Hugging Face snapshot folder (data/<split>-*.parquet beside a README)
// given as -data trains on its train split and evaluates on its test split, end to end.
func TestHFSnapshotRunsThroughThePipeline(t *testing.T) {
	assets.Require(t, assets.Path("models", "stories260K", "stories260K.bin"))
	dir := hfSnapshot(t, 24)
	cfg := parseFlags(t, "-data", dir, "-train-split", "train", "-split", "test", "-epochs", "1", "-max-len", "192")
	cfg.RunsDir = t.TempDir()
	cfg.Data.TrainLimit, cfg.Data.EvalLimit = 16, 8
	res, log := mustRun(t, cfg)
	if !strings.Contains(log, filepath.Join(dir, "data")) {
		t.Errorf("the resolved parquet files are not printed:\n%s", log)
	}
	if res.Summary.Split != "test" || res.Summary.PrimaryAccuracy()["Avg"].Total != 8 {
		t.Errorf("evaluated %q on %d problems, want test on 8", res.Summary.Split, res.Summary.PrimaryAccuracy()["Avg"].Total)
	}
}
