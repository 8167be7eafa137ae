package results

import (
	"math"
	"reflect"
	"testing"
)

func TestMeanStdOf(t *testing.T) {
	f := Float
	s := MeanStdOf([]*float64{f(1), f(2), nil, f(3), f(math.NaN()), f(4)})
	// Mean 2.5; sample variance (2.25+0.25+0.25+2.25)/3 = 5/3.
	if s.N != 4 || *s.Mean != 2.5 || math.Abs(*s.Std-math.Sqrt(5.0/3)) > 1e-12 {
		t.Errorf("stat of 1..4 = n %d mean %v std %v", s.N, *s.Mean, *s.Std)
	}
	if s := MeanStdOf([]*float64{f(7)}); *s.Mean != 7 || s.Std != nil {
		t.Errorf("one seed: mean %v std %v, want 7 and none", *s.Mean, s.Std)
	}
	if s := MeanStdOf([]*float64{nil}); s.Mean != nil || s.N != 0 {
		t.Errorf("no values: %+v", s)
	}
}

// TestTablesWithSpread: values averaged over seeds get a ± column after their mean; one seed prints n/a there.
func TestTablesWithSpread(t *testing.T) {
	f := Float
	t4 := render(t, Table4([]LayersResult{{Layers: 5, Params: 10, ValAcc: MeanStdOf([]*float64{f(60), f(62)}), PaperLayers: 30}}), Text)
	if h := rowCells(t, t4, "L"); !reflect.DeepEqual(h, []string{"Params", "Val Acc (%)", "Val Acc (%) ±", "Paper L", "Paper Params (M)", "Paper Val Acc (%)"}) {
		t.Errorf("Table 4 header %v", h)
	}
	if got := rowCells(t, t4, "5"); !reflect.DeepEqual(got, []string{"10", "61.00", "±1.41", "30", "1.79", "83.85"}) {
		t.Errorf("Table 4 row %v", got)
	}
	t5 := render(t, Table5(InitResult{RandInit: MeanStdOf([]*float64{f(40), f(42)}), ZeroInit: MeanStdOf([]*float64{f(41)}), GainStd: f(0.5)}), Text)
	for label, want := range map[string][]string{
		"Rand-Init Attention": {"41.00", "±1.41", "40.77"},
		"Zero-Init Attention": {"41.00", "n/a", "83.85"},
		"Gain (Zero − Rand)":  {"0.00", "±0.50", "43.08"},
	} {
		if got := rowCells(t, t5, label); !reflect.DeepEqual(got, want) {
			t.Errorf("Table 5 row %s = %v, want %v", label, got, want)
		}
	}
	t6 := render(t, Table6([]EpochsResult{{Epochs: 2, TrainLoss: MeanStdOf([]*float64{f(0.5), f(0.7)}), ValAcc: MeanStdOf([]*float64{f(50)}), PaperEpochs: 30}}), Text)
	if got := rowCells(t, t6, "2"); !reflect.DeepEqual(got, []string{"0.600", "±0.141", "n/a", "n/a", "50.00", "n/a", "30", "0.004", "0.241", "83.85"}) {
		t.Errorf("Table 6 row %v", got)
	}
}
