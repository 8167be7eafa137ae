package main

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"

	"github.com/adapterlab/llama-adapter/results"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// runCurves is one curve of a loss figure: the metrics of each seed's run.
type runCurves struct {
	Label string
	Runs  [][]results.Metric
}

// minEpochsForEpochAxis is the fewest epochs for which "auto" plots one point per epoch (the paper's Figure 5
// axis); shorter runs are plotted per fractional epoch from their step lines, which would otherwise be 1-4 points.
const minEpochsForEpochAxis = 5

// Figure modes (-fig5).
const (
	fig5Auto  = "auto"
	fig5Epoch = "epoch"
	fig5Step  = "step"
)

// lossFigure plots training loss against epochs for each curve, mean over seeds with the min-max spread as a
// band. mode "epoch" uses the epoch mean losses (results.Figure5); "step" bins the step losses into fractions of
// an epoch; "auto" picks epoch when every run has at least minEpochsForEpochAxis epochs. It returns the figure
// and a description of its x axis.
func lossFigure(title string, curves []runCurves, mode string) (*results.Figure, string, error) {
	if mode == fig5Auto {
		mode = fig5Epoch
		for _, c := range curves {
			for _, ms := range c.Runs {
				if len(results.EpochLosses(ms)) < minEpochsForEpochAxis {
					mode = fig5Step
				}
			}
		}
	}
	switch mode {
	case fig5Epoch:
		rc := make([]results.Curve, len(curves))
		for i, c := range curves {
			rc[i].Label = c.Label
			for _, ms := range c.Runs {
				rc[i].Runs = append(rc[i].Runs, results.EpochLosses(ms))
			}
		}
		f, err := results.Figure5(title, rc)
		if err != nil {
			return nil, "", err
		}
		usePreciseTicks(f)
		return f, "epoch (mean train loss of each epoch)", nil
	case fig5Step:
		return stepFigure(title, curves)
	}
	return nil, "", fmt.Errorf("-fig5 %q: want auto, epoch or step", mode)
}

// maxBinsPerEpoch bounds the points per epoch of a step-based curve: each point is the mean step loss over a
// tenth of an epoch (or over one step when an epoch has fewer than ten).
const maxBinsPerEpoch = 10

// binnedLosses returns a run's step losses averaged per 1/bins of an epoch: x[i] is the fractional epoch at
// the end of bin i. Each step line carries the fractional epoch it ended at (so a run of 0.5 epochs ends at 0.5);
// steps per epoch, which bound the bins, follow from the last step line.
func binnedLosses(ms []results.Metric) (xs, ys []float64, bins int, err error) {
	stepsPerEpoch := 0
	for _, m := range ms {
		if m.Kind == results.KindStep && m.Step != nil && m.Epoch != nil && *m.Epoch > 0 {
			stepsPerEpoch = int(math.Round(float64(*m.Step) / *m.Epoch))
		}
	}
	if stepsPerEpoch <= 0 {
		return nil, nil, 0, fmt.Errorf("no step line with its epoch: cannot place steps on an epoch axis")
	}
	bins = min(maxBinsPerEpoch, stepsPerEpoch)
	sums, counts := map[int]float64{}, map[int]int{}
	last := 0
	for _, m := range ms {
		if m.Kind != results.KindStep || m.Step == nil || m.Epoch == nil || m.Loss == nil || math.IsNaN(*m.Loss) {
			continue
		}
		// Bin b covers ((b-1)/bins, b/bins] epochs; the tolerance keeps a step that ends on a bin's edge (0.3·10 is
		// 3.0000000000000004 in floating point) in that bin.
		b := int(math.Ceil(*m.Epoch*float64(bins) - 1e-9))
		sums[b] += *m.Loss
		counts[b]++
		last = max(last, b)
	}
	for b := 1; b <= last; b++ {
		if counts[b] == 0 {
			continue
		}
		xs = append(xs, float64(b)/float64(bins))
		ys = append(ys, sums[b]/float64(counts[b]))
	}
	if len(xs) == 0 {
		return nil, nil, 0, fmt.Errorf("no step losses")
	}
	return xs, ys, bins, nil
}

// stepFigure is lossFigure's step mode.
func stepFigure(title string, curves []runCurves) (*results.Figure, string, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "train loss"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	binsUsed := 0
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for i, c := range curves {
		s, err := seedSpread(c)
		if err != nil {
			return nil, "", err
		}
		binsUsed = max(binsUsed, s.bins)
		for j := range s.lo {
			yMin, yMax = math.Min(yMin, s.lo[j].Y), math.Max(yMax, s.hi[j].Y)
		}
		if err := addStepCurve(p, plotutil.Color(i), c, s); err != nil {
			return nil, "", err
		}
	}
	if len(curves) == 0 {
		return nil, "", fmt.Errorf("no curves")
	}
	// Room above the data for the legend (top right).
	if span := yMax - yMin; span > 0 {
		p.Y.Max = yMax + span*(0.05+0.08*float64(len(curves)))
	}
	desc := fmt.Sprintf("fractional epoch (mean step loss per 1/%d epoch)", binsUsed)
	p.X.Label.Text = desc
	p.Y.Tick.Marker = preciseTicks{}
	return &results.Figure{Plots: []*plot.Plot{p}, Width: 6.5 * vg.Inch, Height: 4.5 * vg.Inch}, desc, nil
}

// stepSpread is one curve's binned step losses over its seeds: the mean and the min-max at each bin end, in
// order of x, and the most bins per epoch any of its runs used.
type stepSpread struct {
	mean, lo, hi plotter.XYs
	bins         int
}

// seedSpread bins each of the curve's runs (binnedLosses) and takes the mean and min-max over seeds at each bin
// end (bins are the same for runs of equal size).
func seedSpread(c runCurves) (stepSpread, error) {
	type agg struct {
		sum, lo, hi float64
		n           int
	}
	var s stepSpread
	at := map[float64]*agg{}
	var order []float64
	for _, ms := range c.Runs {
		xs, ys, bins, err := binnedLosses(ms)
		if err != nil {
			return s, fmt.Errorf("curve %s: %w", c.Label, err)
		}
		s.bins = max(s.bins, bins)
		for j, x := range xs {
			a, ok := at[x]
			if !ok {
				a = &agg{lo: math.Inf(1), hi: math.Inf(-1)}
				at[x] = a
				order = append(order, x)
			}
			a.sum += ys[j]
			a.lo, a.hi = math.Min(a.lo, ys[j]), math.Max(a.hi, ys[j])
			a.n++
		}
	}
	sort.Float64s(order)
	for _, x := range order {
		a := at[x]
		s.mean = append(s.mean, plotter.XY{X: x, Y: a.sum / float64(a.n)})
		s.lo = append(s.lo, plotter.XY{X: x, Y: a.lo})
		s.hi = append(s.hi, plotter.XY{X: x, Y: a.hi})
	}
	return s, nil
}

// addStepCurve draws a curve's mean line in col with its legend entry, and the min-max band under it when the
// curve has several seeds.
func addStepCurve(p *plot.Plot, col color.Color, c runCurves, s stepSpread) error {
	if len(c.Runs) > 1 && len(s.lo) > 1 {
		band := append(plotter.XYs{}, s.lo...)
		for j := len(s.hi) - 1; j >= 0; j-- {
			band = append(band, s.hi[j])
		}
		poly, err := plotter.NewPolygon(band)
		if err != nil {
			return fmt.Errorf("curve %s: band: %w", c.Label, err)
		}
		r, g, b, _ := col.RGBA()
		poly.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x40}
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	l, err := plotter.NewLine(s.mean)
	if err != nil {
		return fmt.Errorf("curve %s: %w", c.Label, err)
	}
	l.Color = col
	l.Width = vg.Points(1.5)
	p.Add(l)
	name := c.Label
	if n := len(c.Runs); n > 1 {
		name = fmt.Sprintf("%s (mean of %d seeds, band: min-max)", c.Label, n)
	}
	p.Legend.Add(name, l)
	return nil
}

// preciseTicks is gonum's default ticker with labels printed to the precision of the tick values: the default
// labels round to too few digits on narrow ranges (ticks 5.375, 5.425, 5.475 read "5.38, 5.42, 5.47").
type preciseTicks struct{}

// Ticks implements plot.Ticker.
func (preciseTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	// The fewest decimals (up to 6) that print every labeled value exactly.
	digits := 0
	for ; digits < 6; digits++ {
		exact := true
		for _, t := range ticks {
			scaled := t.Value * math.Pow(10, float64(digits))
			if t.Label != "" && math.Abs(scaled-math.Round(scaled)) > 1e-6*math.Max(1, math.Abs(scaled)) {
				exact = false
			}
		}
		if exact {
			break
		}
	}
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', digits, 64)
		}
	}
	return ticks
}

// usePreciseTicks sets preciseTicks on the y axes of a figure's plots.
func usePreciseTicks(f *results.Figure) {
	for _, p := range f.Plots {
		p.Y.Tick.Marker = preciseTicks{}
	}
}

// integerTicks marks exactly the given x values (the swept L), instead of fractional ticks such as 1.5 layers.
func integerTicks(f *results.Figure, xs []int) {
	var ticks []plot.Tick
	for _, x := range xs {
		ticks = append(ticks, plot.Tick{Value: float64(x), Label: strconv.Itoa(x)})
	}
	for _, p := range f.Plots {
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
	}
}
