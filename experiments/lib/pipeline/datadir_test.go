package pipeline

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/assets"
)

// ownDataDir writes an official-layout folder whose problems.json holds the first n problems of the shared test
// file (no splits, no images).
func ownDataDir(t *testing.T, n int) string {
	t.Helper()
	src := assets.Path("scienceqa", "problems_test.json")
	assets.Require(t, src)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	sub := map[string]json.RawMessage{}
	for pid, p := range all {
		if len(sub) == n {
			break
		}
		sub[pid] = p
	}
	dir := t.TempDir()
	out, _ := json.Marshal(sub)
	if err := os.WriteFile(filepath.Join(dir, "problems.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func parseFlags(t *testing.T, args ...string) Config {
	t.Helper()
	c := Stories260K()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDataFollowsDir: -data DIR reads DIR's problems whatever the preset pins, and a text-only run needs none of
// the images they reference (the folder has none); an explicit -problems still wins, in either flag order.
func TestDataFollowsDir(t *testing.T) {
	dir := ownDataDir(t, 40)
	for _, args := range [][]string{{"-data", dir}, {"-data", dir, "-eval-limit", "4"}} {
		c := parseFlags(t, args...)
		d, err := loadData(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(d.describe, "of 40 problems") {
			t.Errorf("%v: want the folder's 40 problems: %s", args, d.describe)
		}
		if !strings.Contains(d.describe, filepath.Join(dir, "problems.json")) {
			t.Errorf("the resolved files are not reported: %s", d.describe)
		}
	}
	shared := assets.Path("scienceqa", "problems_test.json")
	for _, args := range [][]string{{"-problems", shared, "-data", dir}, {"-data", dir, "-problems", shared}} {
		if c := parseFlags(t, args...); c.Data.ProblemsFile != shared {
			t.Errorf("%v: -problems %s lost (%q)", args, shared, c.Data.ProblemsFile)
		}
	}
}
