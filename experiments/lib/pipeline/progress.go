package pipeline

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar whose ETA comes from the rate over the last etaWindow updates, not from the average
// since the start: the first step (which compiles) or a slow batch of long sequences would otherwise swing it.
type progress struct {
	bar   *progressbar.ProgressBar
	what  string
	times []time.Time
	done  []int
	total int
	last  int // the last position set
	out   io.Writer
}

// etaWindow is how many recent updates the rate is measured over.
const etaWindow = 20

// newProgress starts a bar of total items at done (a resumed run) on out.
func newProgress(out io.Writer, what string, total, done int) *progress {
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(out), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(24), progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false), progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }))
	_ = bar.Set(done)
	p := &progress{bar: bar, what: what, total: total, last: done, out: out}
	p.times, p.done = []time.Time{time.Now()}, []int{done}
	return p
}

// set moves the bar to done, with detail (e.g. the loss) after the description and the smoothed ETA.
func (p *progress) set(done int, detail string) {
	now := time.Now()
	p.times, p.done = append(p.times, now), append(p.done, done)
	if len(p.times) > etaWindow+1 {
		p.times, p.done = p.times[1:], p.done[1:]
	}
	desc := p.what
	if detail != "" {
		desc += " " + detail
	}
	if n, dt := p.done[len(p.done)-1]-p.done[0], now.Sub(p.times[0]).Seconds(); n > 0 && dt > 0 && done < p.total {
		eta := time.Duration(float64(p.total-done) / (float64(n) / dt) * float64(time.Second))
		desc += " ETA " + eta.Round(time.Second).String()
	}
	p.bar.Describe(desc)
	_ = p.bar.Set(done)
	p.last = done
}

// finish ends the bar with its newline: at 100 % when every item was done, else where it stopped (a signal or an
// error part-way must not draw a finished bar).
func (p *progress) finish() {
	if p.last >= p.total {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit() // prints the newline, leaves the bar as drawn
	fmt.Fprintf(p.out, "%s stopped at %d of %d\n", p.what, p.last, p.total)
}
