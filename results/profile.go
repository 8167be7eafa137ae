package results

import (
	"bufio"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PhaseProfile is where one phase of a run (training, validation loss, letter scoring, cloze scoring, zero-shot
// scoring…) spent its time and memory. Wall is the phase's wall-clock time; compile is the part spent building and
// compiling graphs (one per distinct input shape of an executor: Compiles counts them), execute the part spent in
// executions (Executions counts the calls, compile excluded); the rest of the wall time is host work (batching,
// tokenizing, copying results, writing files). Zero counts are omitted from the JSON.
type PhaseProfile struct {
	Phase          string  `json:"phase"`
	WallSeconds    float64 `json:"wall_seconds"`
	CompileSeconds float64 `json:"compile_seconds,omitempty"`
	Compiles       int     `json:"compiles,omitempty"`
	ExecuteSeconds float64 `json:"execute_seconds,omitempty"`
	Executions     int     `json:"executions,omitempty"`
	// Tokens are the sequence tokens the phase ran (padding excluded); PaddedTokens the same rows at their padded
	// lengths, so PaddedTokens/Tokens − 1 is the share of computation spent on padding.
	Tokens       int64 `json:"tokens,omitempty"`
	PaddedTokens int64 `json:"padded_tokens,omitempty"`
	// PeakRSSBytes is the process's peak resident set (VmHWM) at the phase's end: monotonic over the process, so
	// the phase where it grows is the one that set the peak. SampledPeakRSSBytes is the largest resident set
	// (VmRSS) seen while the phase ran (sampled every SampleInterval), and GoHeapPeakBytes the largest Go heap
	// (live and unswept objects) seen: their difference is memory outside the Go heap (XLA's buffers and
	// executables, C allocations).
	PeakRSSBytes        int64 `json:"peak_rss_bytes,omitempty"`
	SampledPeakRSSBytes int64 `json:"sampled_peak_rss_bytes,omitempty"`
	GoHeapPeakBytes     int64 `json:"go_heap_peak_bytes,omitempty"`
}

// HostSeconds is the phase's wall time that was neither compiling nor executing graphs.
func (p PhaseProfile) HostSeconds() float64 {
	return max(0, p.WallSeconds-p.CompileSeconds-p.ExecuteSeconds)
}

// String is a one-line account, e.g. "train 312.4s: compile 80.1s (6), execute 220.0s (150), host 12.3s; peak RSS 2.1 GB".
func (p PhaseProfile) String() string {
	s := fmt.Sprintf("%s %.1fs: compile %.1fs (%d), execute %.1fs (%d), host %.1fs", p.Phase, p.WallSeconds,
		p.CompileSeconds, p.Compiles, p.ExecuteSeconds, p.Executions, p.HostSeconds())
	if p.Tokens > 0 {
		s += fmt.Sprintf("; %d tokens", p.Tokens)
		if p.PaddedTokens > 0 {
			s += fmt.Sprintf(" (%.1f%% padding)", 100*(float64(p.PaddedTokens)/float64(p.Tokens)-1))
		}
	}
	if p.PeakRSSBytes > 0 {
		s += fmt.Sprintf("; peak RSS %.2f GB", float64(p.PeakRSSBytes)/1e9)
	}
	if p.GoHeapPeakBytes > 0 {
		s += fmt.Sprintf(" (Go heap ≤ %.2f GB)", float64(p.GoHeapPeakBytes)/1e9)
	}
	return s
}

// SampleInterval is how often a PhaseTimer samples the resident set and the Go heap.
const SampleInterval = 100 * time.Millisecond

// PhaseTimer measures one phase: StartPhase begins it, the caller adds what its executors counted (compiles,
// executions, tokens) to Profile, and End fills the wall time and the memory figures.
type PhaseTimer struct {
	Profile PhaseProfile
	start   time.Time
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	rss     int64
	heap    int64
}

// StartPhase starts timing a phase named name and sampling the process's memory.
func StartPhase(name string) *PhaseTimer {
	t := &PhaseTimer{Profile: PhaseProfile{Phase: name}, start: time.Now(), stop: make(chan struct{})}
	t.sample()
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		tick := time.NewTicker(SampleInterval)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				t.sample()
			}
		}
	}()
	return t
}

// sample records the current resident set and Go heap if they are the largest seen.
func (t *PhaseTimer) sample() {
	rss, _ := procStatusBytes("VmRSS")
	heap := GoHeapBytes()
	t.mu.Lock()
	t.rss, t.heap = max(t.rss, rss), max(t.heap, heap)
	t.mu.Unlock()
}

// End stops the phase and returns its profile with wall time and memory filled in. Calling it twice returns the
// first result.
func (t *PhaseTimer) End() PhaseProfile {
	select {
	case <-t.stop:
		return t.Profile
	default:
	}
	t.sample()
	close(t.stop)
	t.done.Wait()
	t.Profile.WallSeconds = time.Since(t.start).Seconds()
	t.Profile.SampledPeakRSSBytes, t.Profile.GoHeapPeakBytes = t.rss, t.heap
	t.Profile.PeakRSSBytes, _ = PeakRSS()
	return t.Profile
}

// PeakRSS is the process's peak resident set in bytes: VmHWM from /proc/self/status on Linux, else getrusage's
// maximum resident set (which Linux reports in KiB, as the BSDs; macOS reports bytes: this is a Linux figure).
func PeakRSS() (int64, error) {
	if v, err := procStatusBytes("VmHWM"); err == nil {
		return v, nil
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return int64(ru.Maxrss) * 1024, nil
}

// procStatusBytes reads a "Key:   N kB" line of /proc/self/status.
func procStatusBytes(key string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("/proc/self/status: unexpected %s line %q", key, sc.Text())
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/status: %s: %w", key, err)
		}
		return n * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("/proc/self/status: %w", err)
	}
	return 0, fmt.Errorf("/proc/self/status has no %s line", key)
}

// goHeapMetric is the runtime metric of heap memory occupied by objects (live, or dead and not yet swept).
const goHeapMetric = "/memory/classes/heap/objects:bytes"

// GoHeapBytes is the Go heap's object bytes now (runtime/metrics; it does not stop the world).
func GoHeapBytes() int64 {
	s := []metrics.Sample{{Name: goHeapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
