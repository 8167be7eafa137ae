package results

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// fullDisk wraps the writer's file: once armed, a Write stores only half its bytes and fails with ENOSPC (what a
// full disk does), or Sync fails with EIO.
type fullDisk struct {
	metricsFile
	failWrite, failSync bool
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if d.failWrite {
		n, _ := d.metricsFile.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: "metrics", Err: syscall.ENOSPC}
	}
	return d.metricsFile.Write(p)
}

func (d *fullDisk) Sync() error {
	if d.failSync {
		return &os.PathError{Op: "sync", Path: "metrics", Err: syscall.EIO}
	}
	return d.metricsFile.Sync()
}

// TestMetricsFailedAppendLeavesFileReadable: a failed append returns its error and leaves the file ending at the
// last good line (no fragment mid-file for the next line to be glued to); once the disk has room, appends resume.
func TestMetricsFailedAppendLeavesFileReadable(t *testing.T) {
	for _, mode := range []string{"write", "sync"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), MetricsFile)
			w, err := OpenMetrics(path)
			if err != nil {
				t.Fatal(err)
			}
			disk := &fullDisk{metricsFile: w.f}
			w.f = disk
			if err := w.Append(stepMetric(1, 2.5)); err != nil {
				t.Fatal(err)
			}
			disk.failWrite, disk.failSync = mode == "write", mode == "sync"
			err = w.Append(stepMetric(2, 2.25))
			if err == nil {
				t.Fatal("Append reported success on a full disk")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if want := map[string]error{"write": syscall.ENOSPC, "sync": syscall.EIO}[mode]; !errors.Is(err, want) {
				t.Errorf("error %q does not wrap %v", err, want)
			}
			raw, _ := os.ReadFile(path)
			if !strings.HasSuffix(string(raw), "\n") || strings.Count(string(raw), "\n") != 1 {
				t.Errorf("file after the failed append = %q, want exactly the first line", raw)
			}
			disk.failWrite, disk.failSync = false, false
			if err := w.Append(stepMetric(3, 2)); err != nil {
				t.Fatal(err)
			}
			got := closeAndRead(t, w, path)
			if want := []Metric{stepMetric(1, 2.5), stepMetric(3, 2)}; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestMetricsAppendAfterUnrecoverableFailure: when the file cannot even be cut back (it was closed under the
// writer), every later Append fails too rather than writing after a fragment.
func TestMetricsAppendAfterUnrecoverableFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFile)
	w, err := OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(stepMetric(1, 2.5)); err != nil {
		t.Fatal(err)
	}
	_ = w.f.Close()
	if err := w.Append(stepMetric(2, 2.25)); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Append on a closed file: %v", err)
	}
	if err := w.Append(stepMetric(3, 2)); err == nil {
		t.Fatal("Append succeeded after an unrecoverable failure")
	}
	if ms, err := ReadMetrics(path); err != nil || len(ms) != 1 {
		t.Errorf("file after the failures: %d lines, %v", len(ms), err)
	}
}

func TestRunTotals(t *testing.T) {
	if s, n := RunTotals(nil); s != 0 || n != 0 {
		t.Errorf("no lines: %v %v", s, n)
	}
	a, b := stepMetric(1, 2), stepMetric(2, 2)
	a.TrainSeconds, a.TrainTokens = Float(1.5), Int(100)
	b.TrainSeconds, b.TrainTokens = Float(3), Int(250)
	epoch := Metric{Kind: KindEpoch, Epoch: Float(1), Loss: Float(2)}
	if s, n := RunTotals([]Metric{a, b, epoch}); s != 3 || n != 250 {
		t.Errorf("got %v s, %v tokens; want the last line's 3 s, 250", s, n)
	}
}
