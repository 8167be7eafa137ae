package results

import "math"

// MeanStd is a measured value over seeds: the mean and the sample standard deviation of the per-seed values
// (nil: no value; Std is nil below two values). N counts the values averaged. A value given as it is, not
// averaged over seeds (Single), has N = 0: tables print no ± column for measures that all have N = 0.
type MeanStd struct {
	Mean, Std *float64
	N         int
}

// Single is one value as a MeanStd, without a spread (nil: n/a).
func Single(v *float64) MeanStd { return MeanStd{Mean: v} }

// MeanStdOf returns the mean and sample standard deviation of the values that are neither nil nor NaN.
func MeanStdOf(vals []*float64) MeanStd {
	var xs []float64
	for _, v := range vals {
		if v != nil && !math.IsNaN(*v) {
			xs = append(xs, *v)
		}
	}
	st := MeanStd{N: len(xs)}
	if len(xs) == 0 {
		return st
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	st.Mean = Float(mean)
	if len(xs) > 1 {
		ss := 0.0
		for _, x := range xs {
			ss += (x - mean) * (x - mean)
		}
		st.Std = Float(math.Sqrt(ss / float64(len(xs)-1)))
	}
	return st
}

// SpreadColumn is the ± column printed after the mean column name (values printed as ±format).
func SpreadColumn(name, format string) Column {
	return Column{Name: name + " ±", Format: "±" + format}
}

// measureColumns are a measure's columns: the mean, and with spread its ± column.
func measureColumns(name, format string, spread bool) []Column {
	cols := []Column{{Name: name, Format: format}}
	if spread {
		cols = append(cols, SpreadColumn(name, format))
	}
	return cols
}

// cells are a measure's values for measureColumns.
func (m MeanStd) cells(spread bool) []*float64 {
	if spread {
		return []*float64{m.Mean, m.Std}
	}
	return []*float64{m.Mean}
}

// averaged reports whether any of ms was averaged over seeds (N > 0), so that its table prints ± columns.
func averaged(ms ...MeanStd) bool {
	for _, m := range ms {
		if m.N > 0 {
			return true
		}
	}
	return false
}
