package results

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is one or more plots side by side, saved as PNG and SVG.
type Figure struct {
	Plots         []*plot.Plot // left to right
	Width, Height vg.Length
	// SideLegend marks the plots whose legend is drawn in a strip right of the axes (heat maps, whose data fill
	// the whole area) instead of inside it; nil: none.
	SideLegend []bool
}

// sideLegendWidth is the strip a side legend takes from its plot's tile.
const sideLegendWidth = vg.Inch

// pngDPI is the PNG resolution: 150 dpi keeps labels crisp at the default 7×4.5 in panel size.
const pngDPI = 150

// panel is a plot under construction, the number of its legend entries and whether the legend goes beside it.
type panel struct {
	*plot.Plot
	entries int
	side    bool
}

func newFigure(panels ...*panel) *Figure {
	f := &Figure{Plots: make([]*plot.Plot, len(panels)), SideLegend: make([]bool, len(panels)),
		Width: vg.Length(len(panels)) * 6.5 * vg.Inch, Height: 4.5 * vg.Inch}
	for i, p := range panels {
		if !p.side {
			p.legendRoom()
		}
		f.Plots[i], f.SideLegend[i] = p.Plot, p.side
	}
	return f
}

// Encode renders the figure as "png" or "svg".
func (f *Figure) Encode(format string) ([]byte, error) {
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(pngDPI))}
	case "svg":
		c = vgsvg.New(f.Width, f.Height)
	default:
		return nil, fmt.Errorf("results: figure format %q not supported (png, svg)", format)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: len(f.Plots), PadX: vg.Inch / 4,
		PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	canvases := plot.Align([][]*plot.Plot{f.Plots}, tiles, dc)
	for i, p := range f.Plots {
		if i < len(f.SideLegend) && f.SideLegend[i] {
			drawSideLegend(p, canvases[0][i])
			continue
		}
		p.Draw(canvases[0][i])
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("results: encode %s figure: %w", format, err)
	}
	return b.Bytes(), nil
}

// drawSideLegend draws p in c less a strip on the right, and p's legend at the top of that strip.
func drawSideLegend(p *plot.Plot, c draw.Canvas) {
	leg := p.Legend
	p.Legend = plot.NewLegend()
	p.Draw(draw.Crop(c, 0, -sideLegendWidth, 0, 0))
	p.Legend = leg
	leg.Top, leg.Left, leg.XOffs, leg.YOffs = true, true, 0, 0
	leg.Draw(draw.Crop(c, c.Size().X-sideLegendWidth+vg.Inch/8, 0, 0, 0))
}

// Save writes the figure to base+".png" and base+".svg", each atomically.
func (f *Figure) Save(base string) error {
	for _, format := range []string{"png", "svg"} {
		data, err := f.Encode(format)
		if err != nil {
			return fmt.Errorf("results: save %s.%s: %w", base, format, err)
		}
		if err := WriteFileAtomic(base+"."+format, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func newPlot(title, xLabel, yLabel string) *panel {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return &panel{Plot: p}
}

// addLine adds a line (with point markers when marks) in palette color i and a legend entry.
func addLine(p *panel, name string, xys plotter.XYs, i int, marks bool) error {
	p.entries++
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("results: line %q: %w", name, err)
	}
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(1.5)
	p.Add(l)
	if !marks {
		p.Legend.Add(name, l)
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return fmt.Errorf("results: points %q: %w", name, err)
	}
	s.Color = l.Color
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(3)
	p.Add(s)
	p.Legend.Add(name, l, s)
	return nil
}

// series is one line of a panel: its legend name, its points and whether they get markers.
type series struct {
	name  string
	xys   plotter.XYs
	marks bool
}

// addSeries adds the series that have points to p, series k in palette color first+k (an empty one leaves its
// color unused, so a line keeps its color whether or not the others are drawn).
func addSeries(p *panel, first int, ss ...series) error {
	for k, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		if err := addLine(p, s.name, s.xys, first+k, s.marks); err != nil {
			return err
		}
	}
	return nil
}

// Metric kinds tell step lines from epoch summary lines in metrics.jsonl.
const (
	KindStep  = "step"
	KindEpoch = "epoch"
)

// LossCurve plots one run's training loss from its metrics: the per-step loss (lines of kind "step"),
// the epoch mean train loss and the validation loss (lines of kind "epoch", or any line with a val
// loss). The x axis is the epoch when every plotted line has one (fractional for steps), else the step.
func LossCurve(title string, ms []Metric) (*Figure, error) {
	useEpoch := true
	found := false
	for _, m := range ms {
		if m.Loss != nil || m.ValLoss != nil {
			found = true
			if m.Epoch == nil {
				useEpoch = false
			}
		}
	}
	if !found {
		return nil, errors.New("results: loss curve: no line has a loss or val loss")
	}
	x := func(m Metric) (float64, bool) {
		if useEpoch {
			return *m.Epoch, true
		}
		if m.Step == nil {
			return 0, false
		}
		return float64(*m.Step), true
	}
	var steps, epochs, vals plotter.XYs
	for _, m := range ms {
		xv, ok := x(m)
		if !ok {
			continue
		}
		if m.Loss != nil {
			if m.Kind == KindEpoch {
				epochs = append(epochs, plotter.XY{X: xv, Y: *m.Loss})
			} else {
				steps = append(steps, plotter.XY{X: xv, Y: *m.Loss})
			}
		}
		if m.ValLoss != nil {
			vals = append(vals, plotter.XY{X: xv, Y: *m.ValLoss})
		}
	}
	xLabel := "epoch"
	if !useEpoch {
		xLabel = "step"
	}
	p := newPlot(title, xLabel, "loss")
	for _, xys := range []plotter.XYs{steps, epochs, vals} {
		sortXYs(xys)
	}
	if err := addSeries(p, 0, series{"train loss (step)", steps, false}, series{"train loss (epoch mean)", epochs, true},
		series{"val loss", vals, true}); err != nil {
		return nil, err
	}
	return newFigure(p), nil
}

// EpochLosses returns the train loss of each epoch from a run's epoch lines (kind "epoch"), indexed
// from epoch 1 (index 0) and sorted by epoch; when an epoch was logged twice (a resumed run) the last
// line wins. Epochs missing in between are NaN.
func EpochLosses(ms []Metric) []float64 {
	byEpoch := map[int]float64{}
	last := 0
	for _, m := range ms {
		if m.Kind != KindEpoch || m.Epoch == nil || m.Loss == nil {
			continue
		}
		e := int(math.Round(*m.Epoch))
		if e < 1 {
			continue
		}
		byEpoch[e] = *m.Loss
		last = max(last, e)
	}
	out := make([]float64, last)
	for i := range out {
		v, ok := byEpoch[i+1]
		if !ok {
			v = math.NaN()
		}
		out[i] = v
	}
	return out
}

// Curve is one setting of Figure 5: the per-epoch training loss of each seed's run (Runs[s][e] is
// seed s's loss at epoch e+1; NaN for a missing epoch).
type Curve struct {
	Label string
	Runs  [][]float64
}

// Figure5 plots training loss per epoch for each setting (the paper compares zero-init with
// random-init attention): the mean over seeds as a line and, with two or more seeds, the min–max
// spread over seeds as a shaded band.
func Figure5(title string, curves []Curve) (*Figure, error) {
	if title == "" {
		title = "Training loss: zero-init vs random-init attention"
	}
	p := newPlot(title, "epoch", "train loss")
	for i, c := range curves {
		var mean, lo, hi plotter.XYs
		for e := 0; ; e++ {
			var vals []float64
			more := false
			for _, r := range c.Runs {
				if e < len(r) {
					more = true
					if !math.IsNaN(r[e]) {
						vals = append(vals, r[e])
					}
				}
			}
			if !more {
				break
			}
			if len(vals) == 0 {
				continue
			}
			sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
			for _, v := range vals {
				sum += v
				mn, mx = math.Min(mn, v), math.Max(mx, v)
			}
			x := float64(e + 1)
			mean = append(mean, plotter.XY{X: x, Y: sum / float64(len(vals))})
			if len(vals) > 1 {
				lo = append(lo, plotter.XY{X: x, Y: mn})
				hi = append(hi, plotter.XY{X: x, Y: mx})
			}
		}
		if len(mean) == 0 {
			return nil, fmt.Errorf("results: figure 5: curve %q has no loss values", c.Label)
		}
		if len(lo) > 1 {
			band := make(plotter.XYs, 0, 2*len(lo))
			band = append(band, lo...)
			for j := len(hi) - 1; j >= 0; j-- {
				band = append(band, hi[j])
			}
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return nil, fmt.Errorf("results: figure 5: band %q: %w", c.Label, err)
			}
			poly.Color = withAlpha(plotutil.Color(i), 0x40)
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		name := c.Label
		if n := len(c.Runs); n > 1 {
			name = fmt.Sprintf("%s (mean of %d seeds, band: min-max)", c.Label, n)
		}
		if err := addLine(p, name, mean, i, len(mean) <= 30); err != nil {
			return nil, err
		}
	}
	if len(curves) == 0 {
		return nil, errors.New("results: figure 5: no curves")
	}
	return newFigure(p), nil
}

// LayersFigure plots the insertion-layers sweep: val accuracy vs L (with the paper's accuracy at each
// row's PaperLayers, drawn at the measured L) and the final train / val loss vs L.
func LayersFigure(rows []LayersResult) (*Figure, error) {
	if len(rows) == 0 {
		return nil, errors.New("results: layers figure: no rows")
	}
	rows = append([]LayersResult(nil), rows...)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Layers < rows[j].Layers })
	paper := map[int]float64{}
	for _, p := range PaperTable4() {
		paper[p.Layers] = p.ValAcc
	}
	var acc, paperAcc, train, val plotter.XYs
	for _, r := range rows {
		x := float64(r.Layers)
		if r.ValAcc.Mean != nil {
			acc = append(acc, plotter.XY{X: x, Y: *r.ValAcc.Mean})
		}
		pl := r.paperL()
		if v, ok := paper[pl]; ok {
			paperAcc = append(paperAcc, plotter.XY{X: x, Y: v})
		}
		if r.TrainLoss.Mean != nil {
			train = append(train, plotter.XY{X: x, Y: *r.TrainLoss.Mean})
		}
		if r.ValLoss.Mean != nil {
			val = append(val, plotter.XY{X: x, Y: *r.ValLoss.Mean})
		}
	}
	pa := newPlot("Val accuracy vs adapted layers", "adapted layers L", "val accuracy (%)")
	if err := addSeries(pa, 0, series{"measured", acc, true}, series{"paper (LLaMA-7B, its L mapped)", paperAcc, true}); err != nil {
		return nil, err
	}
	pl := newPlot("Final loss vs adapted layers", "adapted layers L", "loss")
	if err := addSeries(pl, 2, series{"train loss", train, true}, series{"val loss", val, true}); err != nil {
		return nil, err
	}
	if len(acc)+len(paperAcc) == 0 || len(train)+len(val) == 0 {
		// One panel has nothing to draw: keep only the other.
		if len(acc)+len(paperAcc) == 0 {
			return newFigure(pl), nil
		}
		return newFigure(pa), nil
	}
	return newFigure(pa, pl), nil
}

// legendRoom raises the y range so the legend (top right) sits above the data instead of over it.
func (p *panel) legendRoom() {
	if span := p.Y.Max - p.Y.Min; p.entries > 0 && span > 0 {
		p.Y.Max += span * (0.05 + 0.08*float64(p.entries))
	}
}

func sortXYs(xys plotter.XYs) {
	sort.SliceStable(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	// NRGBA: straight (non-premultiplied) alpha over the opaque palette color.
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}
