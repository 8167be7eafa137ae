package results

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func finishedFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"summary.json":     `{"run_id": "x", "complete": true}` + "\n",
		"predictions.json": `{"1": 0}` + "\n",
		MetricsFile:        `{"kind":"step","step":1,"loss":2}` + "\n",
		"table.txt":        "NAT SOC\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var finalFiles = []FinalFile{{Name: "predictions.json"}, {Name: MetricsFile}, {Name: "table.txt"}, {Name: "summary.json"}}

func TestMarkCompleteThenVerify(t *testing.T) {
	dir := finishedFolder(t)
	if _, err := VerifyComplete(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("VerifyComplete before MarkComplete: %v, want ErrNotExist", err)
	}
	if err := MarkComplete(dir, finalFiles); err != nil {
		t.Fatal(err)
	}
	m, err := VerifyComplete(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != len(finalFiles) {
		t.Errorf("manifest lists %v", m.Files)
	}
	// A final file changed afterwards (same size) is caught, naming it.
	p := filepath.Join(dir, "predictions.json")
	if err := os.WriteFile(p, []byte(`{"1": 1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyComplete(dir); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("changed predictions: %v", err)
	}
	_ = os.Remove(p)
	if _, err := VerifyComplete(dir); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("missing predictions: %v", err)
	}
}

// TestMarkCompleteRefusesBadFiles: a missing, empty, unparsable or fragment-ended final file, or one whose own check
// fails, keeps the run incomplete (no complete.json).
func TestMarkCompleteRefusesBadFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		file, body string
		check      func(string) error
	}{
		"missing":          {file: "predictions.json"},
		"empty":            {file: "table.txt", body: ""},
		"bad json":         {file: "predictions.json", body: `{"1": `},
		"metrics fragment": {file: MetricsFile, body: `{"kind":"step","step":1}` + "\n" + `{"kind":"st`},
		"metrics bad line": {file: MetricsFile, body: `{"kind":` + "\n" + `{"step":2}` + "\n"},
		"own check":        {file: "table.txt", body: "x\n", check: func(string) error { return errors.New("bad table") }},
	} {
		t.Run(name, func(t *testing.T) {
			dir := finishedFolder(t)
			p := filepath.Join(dir, tc.file)
			if name == "missing" {
				_ = os.Remove(p)
			} else if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			files := append([]FinalFile(nil), finalFiles...)
			for i := range files {
				if files[i].Name == tc.file {
					files[i].Check = tc.check
				}
			}
			err := MarkComplete(dir, files)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("MarkComplete: %v, want an error naming %s", err, p)
			}
			if _, err := os.Stat(filepath.Join(dir, CompleteFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s written for a folder with a bad file", CompleteFile)
			}
		})
	}
}
