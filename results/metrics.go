package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// MetricsFile is the name of a run's metrics log inside its folder.
const MetricsFile = "metrics.jsonl"

// Metric is one line of metrics.jsonl: what was logged at one step or at the end of one epoch. Every
// field is optional (nil: not logged on this line), so step lines and epoch lines share one type.
type Metric struct {
	Kind            string   `json:"kind,omitempty"` // KindStep or KindEpoch
	Step            *int     `json:"step,omitempty"`
	Epoch           *float64 `json:"epoch,omitempty"` // fractional for step lines, whole at epoch ends
	Loss            *float64 `json:"loss,omitempty"`  // training loss (step or epoch mean)
	LR              *float64 `json:"lr,omitempty"`
	TokensPerSecond *float64 `json:"tokens_per_second,omitempty"`
	ValLoss         *float64 `json:"val_loss,omitempty"`
	ValAcc          *float64 `json:"val_acc,omitempty"` // percent
	// TrainSeconds and TrainTokens are running totals of training wall time and tokens up to this line,
	// summed over every process that worked on the run: a resumed run starts from the totals of the last
	// line its checkpoint kept (RunTotals), so its summary reports the whole run's training time.
	TrainSeconds *float64 `json:"train_seconds,omitempty"`
	TrainTokens  *int     `json:"train_tokens,omitempty"`
	// Gates are the adapter's gates as applied after this step (tanh(gate) for head-tanh gates), [adapted layer,
	// lowest first][head], on some step lines: the first, the last and evenly spaced ones between (GateTrace).
	Gates [][]float32 `json:"gates,omitempty"`
}

// RunTotals returns the training totals (TrainSeconds, TrainTokens) of the last line that carries them;
// zeros when none does.
func RunTotals(ms []Metric) (seconds float64, tokens int) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].TrainSeconds != nil {
			if ms[i].TrainTokens != nil {
				tokens = *ms[i].TrainTokens
			}
			return *ms[i].TrainSeconds, tokens
		}
	}
	return 0, 0
}

// Int returns a pointer to v, for Metric's optional fields.
func Int(v int) *int { return &v }

// Float returns a pointer to v, for optional float fields (Metric, Summary, table rows).
func Float(v float64) *float64 { return &v }

// MetricsWriter appends Metric lines to a metrics.jsonl file, one write and one fsync per line, so that
// a killed process loses at most the line it was writing. A line whose write or fsync fails is cut off
// again, so the file always ends at its last good line; the error is returned and must be handled (a
// run whose log lost a line is not complete).
type MetricsWriter struct {
	f    metricsFile
	path string
	size int64 // bytes up to the end of the last good line
	// broken is set when a failed line could not be cut off: later lines would follow a fragment.
	broken error
}

// metricsFile is what MetricsWriter needs of its file (an interface so tests can inject a full disk).
type metricsFile interface {
	io.Writer
	io.Seeker
	Sync() error
	Truncate(size int64) error
	Close() error
}

// OpenMetrics opens path for appending, creating it if needed. If the file ends in a partial line (the
// previous writer was killed mid-write) that fragment is cut off first, so the next line starts clean.
func OpenMetrics(path string) (*MetricsWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("results: open metrics: %w", err)
	}
	size, err := dropPartialTail(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("results: open metrics %s: %w", path, err)
	}
	return &MetricsWriter{f: f, path: path, size: size}, nil
}

// dropPartialTail truncates f after its last newline, leaves the offset at the end and returns the size.
func dropPartialTail(f *os.File) (int64, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	keep := int64(bytes.LastIndexByte(data, '\n') + 1) // 0 when there is no complete line.
	if keep != int64(len(data)) {
		if err := f.Truncate(keep); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	_, err = f.Seek(keep, io.SeekStart)
	return keep, err
}

// Append writes m as one JSON line and fsyncs it. On failure (a full disk, an I/O error) the partial line
// is cut off so the file stays readable, and the error is returned; if even that fails, every later
// Append fails too.
func (w *MetricsWriter) Append(m Metric) error {
	if w.broken != nil {
		return fmt.Errorf("results: append to %s: an earlier failure left the file unrepaired: %w", w.path, w.broken)
	}
	line, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("results: append to %s: %w", w.path, err)
	}
	line = append(line, '\n')
	if _, err := w.f.Write(line); err != nil {
		return w.rollBack(fmt.Errorf("results: append to %s: %w", w.path, err))
	}
	if err := w.f.Sync(); err != nil {
		// The line may sit in the page cache without being durable: treat it as not written.
		return w.rollBack(fmt.Errorf("results: append to %s: fsync: %w", w.path, err))
	}
	w.size += int64(len(line))
	return nil
}

// rollBack cuts the file back to its last good line after a failed append and returns cause (with the
// repair's own failure, if any).
func (w *MetricsWriter) rollBack(cause error) error {
	err := w.f.Truncate(w.size)
	if err == nil {
		_, err = w.f.Seek(w.size, io.SeekStart)
	}
	// No fsync here: the next successful Append's fsync makes the cut durable along with its own line.
	if err != nil {
		w.broken = cause
		return fmt.Errorf("%w (and cutting the partial line off failed: %v; the next OpenMetrics drops it)", cause, err)
	}
	return cause
}

// Close closes the file.
func (w *MetricsWriter) Close() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("results: close %s: %w", w.path, err)
	}
	return nil
}

// ReadMetrics reads a metrics.jsonl file. See ParseMetrics.
func ReadMetrics(path string) ([]Metric, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("results: read metrics: %w", err)
	}
	defer f.Close()
	return ParseMetrics(f, path)
}

// ParseMetrics parses JSON lines from r; name is used in error messages (normally the file path).
// Blank lines are skipped. A malformed complete line is an error "name:line: ...". The last line, when
// it has no trailing newline and does not parse, is the fragment of a killed writer and is dropped
// silently; when it parses it is kept.
func ParseMetrics(r io.Reader, name string) ([]Metric, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("results: read %s: %w", name, err)
	}
	var out []Metric
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		complete := false
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data, complete = data[:i], data[i+1:], true
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var m Metric
		if err := json.Unmarshal(line, &m); err != nil {
			if !complete {
				break
			}
			return nil, fmt.Errorf("%s:%d: malformed metrics line: %w", name, lineNo, err)
		}
		out = append(out, m)
	}
	return out, nil
}
