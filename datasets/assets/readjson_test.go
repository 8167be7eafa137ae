package assets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fatalRecorder records Fatalf instead of stopping the test (ReadJSON then goes on; only the first message counts).
type fatalRecorder struct {
	testing.TB
	msgs []string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func TestReadJSON(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"cases":[{"name":"a","ids":[1,2]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"cases":`), 0o644); err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			Name string `json:"name"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	ReadJSON(t, good, &g)
	if len(g.Cases) != 1 || g.Cases[0].Name != "a" || len(g.Cases[0].IDs) != 2 || g.Cases[0].IDs[1] != 2 {
		t.Errorf("decoded %+v", g)
	}
	for path, want := range map[string]string{bad: "parsing " + bad, filepath.Join(dir, "none.json"): "reading "} {
		r := &fatalRecorder{TB: t}
		ReadJSON(r, path, &g)
		if len(r.msgs) == 0 || !strings.HasPrefix(r.msgs[0], want) {
			t.Errorf("%s: failures %q, want the first to start with %q", path, r.msgs, want)
		}
	}
}
