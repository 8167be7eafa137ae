package results

import (
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// GatePanel is one adapter's gates for GatesFigure: the effective value (tanh(gate) for per-head tanh gates) of
// each adapted layer (Layers, the model's layer numbers) and head (one column for per-layer gates). A panel of
// gates over training (GateTrace) has one column per logged step instead: XValues holds the columns' positions (the
// steps) and XLabel names them.
type GatePanel struct {
	Title   string
	Layers  []int
	Values  [][]float64 // [layer][head], or [layer][column of XValues]
	XValues []float64   // column positions (nil: 0, 1, … for heads)
	XLabel  string      // x axis label ("": head)
}

// gateGrid is a GatePanel as a heat map grid: columns are heads, rows layers.
type gateGrid GatePanel

func (g gateGrid) Dims() (c, r int)   { return len(g.Values[0]), len(g.Values) }
func (g gateGrid) Z(c, r int) float64 { return g.Values[r][c] }
func (g gateGrid) X(c int) float64 {
	if g.XValues != nil {
		return g.XValues[c]
	}
	return float64(c)
}
func (g gateGrid) Y(r int) float64 { return float64(g.Layers[r]) }

// swatch is a legend entry's colored square.
type swatch struct{ c color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(s.c, pts)
}

// GatesFigure draws each panel's gates as a heat map, layers (y) × heads (x), side by side on one diverging color
// scale symmetric about 0 (blue negative, red positive; the legend gives the scale), so panels compare directly.
func GatesFigure(panels []GatePanel) (*Figure, error) {
	if len(panels) == 0 {
		return nil, errors.New("results: gates figure of no adapter")
	}
	m := 0.0
	for _, p := range panels {
		if len(p.Values) == 0 || len(p.Values) != len(p.Layers) {
			return nil, fmt.Errorf("results: gates %q: %d rows for %d layers", p.Title, len(p.Values), len(p.Layers))
		}
		for _, row := range p.Values {
			if len(row) != len(p.Values[0]) || len(row) == 0 {
				return nil, fmt.Errorf("results: gates %q: ragged rows", p.Title)
			}
			if p.XValues != nil && len(p.XValues) != len(row) {
				return nil, fmt.Errorf("results: gates %q: %d x positions for %d columns", p.Title, len(p.XValues), len(row))
			}
			for _, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("results: gates %q: non-finite value %g", p.Title, v)
				}
				m = max(m, math.Abs(v))
			}
		}
	}
	if m == 0 {
		m = 1 // all gates 0 (zero-init before training): any scale shows them white
	}
	cmap := moreland.SmoothBlueRed()
	cmap.SetMin(-m)
	cmap.SetMax(m)
	pal := cmap.Palette(255)
	var ps []*panel
	for _, gp := range panels {
		heads := len(gp.Values[0])
		xl := "head"
		if heads == 1 {
			xl = "(one gate per layer)"
		}
		if gp.XLabel != "" {
			xl = gp.XLabel
		}
		pm := 0.0
		for _, row := range gp.Values {
			for _, v := range row {
				pm = max(pm, math.Abs(v))
			}
		}
		p := newPlot(fmt.Sprintf("%s (max |value| %.3f)", gp.Title, pm), xl, "layer")
		p.side = true
		p.Y.Tick.Marker = plot.TickerFunc(layerTicks)
		hm := plotter.NewHeatMap(gateGrid(gp), pal)
		hm.Min, hm.Max = -m, m
		p.Add(hm)
		for _, v := range []float64{m, m / 2, 0, -m / 2, -m} {
			c, err := cmap.At(v)
			if err != nil {
				return nil, fmt.Errorf("results: gates color scale: %w", err)
			}
			p.Legend.Add(fmt.Sprintf("%+.3f", v), swatch{c})
			p.entries++
		}
		p.Legend.Left = false
		p.X.Min, p.X.Max = -0.5, float64(heads)-0.5
		if gp.XValues != nil {
			// Cells reach halfway to their neighbors: extend the axis by half the first and last gaps.
			lo, hi := gp.XValues[0], gp.XValues[len(gp.XValues)-1]
			if len(gp.XValues) > 1 {
				p.X.Min, p.X.Max = lo-(gp.XValues[1]-lo)/2, hi+(hi-gp.XValues[len(gp.XValues)-2])/2
			} else {
				p.X.Min, p.X.Max = lo-0.5, hi+0.5
			}
		}
		p.Y.Min, p.Y.Max = float64(gp.Layers[0])-0.5, float64(gp.Layers[len(gp.Layers)-1])+0.5
		ps = append(ps, p)
	}
	return newFigure(ps...), nil
}

// layerTicks labels whole layer numbers: every layer up to 10 rows, else every 5th (or 10th) with minor ticks
// between (the default ticker puts labels like 25.00 on a range that ends at half-layers).
func layerTicks(lo, hi float64) []plot.Tick {
	step := 1
	if hi-lo > 40 {
		step = 10
	} else if hi-lo > 10 {
		step = 5
	}
	var ts []plot.Tick
	for l := int(math.Ceil(lo)); float64(l) <= hi; l++ {
		t := plot.Tick{Value: float64(l)}
		if l%step == 0 {
			t.Label = fmt.Sprint(l)
		}
		ts = append(ts, t)
	}
	return ts
}
