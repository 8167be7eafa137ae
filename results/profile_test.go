package results

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestPhaseTimerMeasuresMemory: a phase that holds a 256 MB Go slice at its end reports a Go-heap peak and a
// sampled resident set of at least that, a process peak (VmHWM) no lower than the sampled one, its wall time, and
// the counts the caller added; host time is what compile and execute leave.
func TestPhaseTimerMeasuresMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	const size = 256 << 20
	p := StartPhase("train")
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i) // touch every page: resident, not just reserved
	}
	p.Profile.Compiles, p.Profile.CompileSeconds, p.Profile.Executions, p.Profile.ExecuteSeconds = 2, 0.001, 5, 0.002
	got := p.End()
	runtime.KeepAlive(buf)
	if got.GoHeapPeakBytes < size || got.SampledPeakRSSBytes < size || got.PeakRSSBytes < got.SampledPeakRSSBytes {
		t.Errorf("Go heap peak %d, sampled RSS %d, peak RSS %d: want ≥ %d each, peak ≥ sampled", got.GoHeapPeakBytes,
			got.SampledPeakRSSBytes, got.PeakRSSBytes, size)
	}
	if got.WallSeconds <= 0 || got.Compiles != 2 || got.Executions != 5 || got.Phase != "train" {
		t.Errorf("profile %+v", got)
	}
	if h := got.HostSeconds(); h < 0 || h > got.WallSeconds-0.003+1e-9 {
		t.Errorf("host seconds %g of wall %g", h, got.WallSeconds)
	}
	if again := p.End(); again != got {
		t.Errorf("a second End changed the profile: %+v", again)
	}
	data, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"phase":"train"`, `"compiles":2`, `"peak_rss_bytes":`, `"go_heap_peak_bytes":`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON %s lacks %s", data, key)
		}
	}
	if s := got.String(); !strings.HasPrefix(s, "train ") || !strings.Contains(s, "compile") {
		t.Errorf("String() = %q", s)
	}
}
