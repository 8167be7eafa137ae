package results

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func stepMetric(step int, loss float64) Metric {
	return Metric{Kind: KindStep, Step: Int(step), Epoch: Float(float64(step) / 4), Loss: Float(loss),
		LR: Float(1e-3), TokensPerSecond: Float(100)}
}

func TestMetricsAppendAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFile)
	w, err := OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Metric{stepMetric(1, 2.5), stepMetric(2, 2.25),
		{Kind: KindEpoch, Epoch: Float(1), Loss: Float(2.375), ValLoss: Float(2.5), ValAcc: Float(40)}}
	for _, m := range want {
		if err := w.Append(m); err != nil {
			t.Fatal(err)
		}
	}
	got := closeAndRead(t, w, path)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	raw, _ := os.ReadFile(path)
	if lines := strings.Count(string(raw), "\n"); lines != 3 {
		t.Errorf("%d lines, want 3:\n%s", lines, raw)
	}
	// Optional fields that were not logged stay out of the line.
	if strings.Contains(strings.SplitN(string(raw), "\n", 2)[0], "val_loss") {
		t.Errorf("step line carries val_loss: %s", raw)
	}
}

// writeMetricsFile writes content as the metrics file of a fresh folder and returns its path.
func writeMetricsFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), MetricsFile)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMetricsTruncatedTail(t *testing.T) {
	// Two complete lines and the fragment of a third (the writer was killed mid-line).
	path := writeMetricsFile(t, "{\"step\":1,\"loss\":2.5}\n\n{\"step\":2,\"loss\":2.25}\n{\"step\":3,\"lo")
	got, err := ReadMetrics(path)
	if err != nil {
		t.Fatalf("a truncated last line must be tolerated: %v", err)
	}
	if len(got) != 2 || *got[1].Step != 2 || *got[1].Loss != 2.25 {
		t.Fatalf("got %+v", got)
	}
	// Reopening for append cuts the fragment so the next line is not glued to it.
	w, err := OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(Metric{Step: Int(3), Loss: Float(2)}); err != nil {
		t.Fatal(err)
	}
	got = closeAndRead(t, w, path)
	if len(got) != 3 || *got[2].Step != 3 || *got[2].Loss != 2 {
		t.Fatalf("after reopen: %+v", got)
	}
	// A complete last object without its newline is kept.
	if err := os.WriteFile(path, []byte("{\"step\":1}\n{\"step\":2}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadMetrics(path); err != nil || len(got) != 2 {
		t.Errorf("unterminated complete line: %+v, %v", got, err)
	}
}

func TestMetricsMalformedLine(t *testing.T) {
	path := writeMetricsFile(t, "{\"step\":1,\"loss\":2.5}\n{\"step\":2,\"loss\":oops}\n{\"step\":3}\n")
	_, err := ReadMetrics(path)
	if err == nil {
		t.Fatal("a malformed middle line was accepted")
	}
	if !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("error %q does not start with %s:2:", err, path)
	}
	// A wrong type is malformed too.
	if _, err := ParseMetrics(strings.NewReader("\n{\"step\":\"x\"}\n"), "m.jsonl"); err == nil || !strings.HasPrefix(err.Error(), "m.jsonl:2: ") {
		t.Errorf("wrong type: err = %v", err)
	}
	if _, err := ReadMetrics(filepath.Join(t.TempDir(), "none.jsonl")); err == nil {
		t.Error("reading a missing file succeeded")
	}
}

// closeAndRead closes w and reads its file back.
func closeAndRead(t *testing.T, w *MetricsWriter, path string) []Metric {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
