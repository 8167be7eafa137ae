package results

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
)

func render(t *testing.T, tb *Table, f Format) string {
	t.Helper()
	var b bytes.Buffer
	if err := tb.Render(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// cells splits a rendered table line ("│ a │ b │" or "| a | b |") into trimmed cells.
func cells(line string) []string {
	line = strings.NewReplacer("│", "|").Replace(line)
	parts := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// rowCells finds the rendered row whose first cell is label.
func rowCells(t *testing.T, out, label string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if c := cells(line); len(c) > 1 && c[0] == label {
			return c[1:]
		}
	}
	t.Fatalf("no row %q in\n%s", label, out)
	return nil
}

func measuredRun() MeasuredRow {
	acc := AccuracyTable{}
	acc.Set("NAT", 3, 4)
	acc.Set("G1-6", 1, 3)
	acc.Set("Avg", 4, 7)
	return MeasuredRow{Name: "tiny-run", Accuracy: acc}
}

func TestScienceQATable(t *testing.T) {
	tb := ScienceQATable("ScienceQA", []MeasuredRow{measuredRun()}, PaperScienceQARows())
	for _, f := range []Format{Text, Markdown} {
		out := render(t, tb, f)
		header := rowCells(t, out, "Method")
		if want := Categories; !reflect.DeepEqual(header, want) {
			t.Errorf("format %d: header %v, want %v", f, header, want)
		}
		wantRows := map[string][]string{
			"LLaMA-Adapter (paper)":   {"84.37", "88.30", "84.36", "83.72", "80.32", "86.90", "85.83", "84.05", "85.19"},
			"LLaMA-Adapter_T (paper)": {"79.00", "73.79", "80.55", "78.30", "70.35", "83.14", "79.77", "75.68", "78.31"},
			"GPT-3 CoT (ALE) (paper)": {"75.44", "70.87", "78.09", "74.68", "67.43", "79.93", "78.23", "69.68", "75.17"},
			"Random chance (paper)":   {"40.28", "46.13", "29.25", "47.45", "40.08", "33.66", "39.35", "40.67", "39.83"},
			"tiny-run":                {"75.00", "n/a", "n/a", "n/a", "n/a", "n/a", "33.33", "n/a", "57.14"},
		}
		for label, want := range wantRows {
			if got := rowCells(t, out, label); !reflect.DeepEqual(got, want) {
				t.Errorf("format %d: row %s = %v, want %v", f, label, got, want)
			}
		}
	}
	md := render(t, tb, Markdown)
	if !strings.Contains(md, "**ScienceQA**") || !strings.Contains(md, "|:--") {
		t.Errorf("not Markdown:\n%s", md)
	}
	// A reference row missing a category prints n/a there, not 0.
	refs := PaperScienceQARows()[:1]
	delete(refs[0].Accuracy, "LAN")
	out := render(t, ScienceQATable("", nil, refs), Text)
	if got := rowCells(t, out, "Random chance (paper)")[2]; got != NA {
		t.Errorf("missing reference cell = %q, want n/a", got)
	}
}

func TestTableJSONRoundTrip(t *testing.T) {
	tb := ScienceQATable("ScienceQA", []MeasuredRow{measuredRun()}, PaperScienceQARows())
	js := render(t, tb, JSON)
	// n/a is null in JSON, never 0.
	if !strings.Contains(js, "null") {
		t.Errorf("no null for n/a cells:\n%s", js)
	}
	back, err := DecodeTable([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, tb) {
		t.Errorf("JSON round trip differs:\n got %+v\nwant %+v", back, tb)
	}
	if render(t, back, Text) != render(t, tb, Text) {
		t.Error("decoded table renders differently")
	}
	if _, err := DecodeTable([]byte(`{"columns":[{"name":"a"}],"rows":[{"label":"x","values":[]}]}`)); err == nil {
		t.Error("a row with the wrong number of values was accepted")
	}
}

// TestScoresTable: the score command's table (the scores of scienceqa's TestScore and TestScoreNA fixtures).
func TestScoresTable(t *testing.T) {
	acc := AccuracyTable{}
	for c, n := range map[string][2]int{"NAT": {1, 2}, "SOC": {1, 1}, "LAN": {0, 1}, "TXT": {3, 3}, "IMG": {1, 2}, "NO": {0, 2},
		"G1-6": {2, 2}, "G7-12": {0, 2}, "Avg": {3, 6}} {
		acc.Set(c, n[0], n[1])
	}
	// LAN is a real 0, not n/a.
	wantTable := `┌────────────┬───────┬────────┬──────┬────────┬───────┬──────┬────────┬───────┬───────┐
│            │   NAT │    SOC │  LAN │    TXT │   IMG │   NO │   G1-6 │ G7-12 │   Avg │
├────────────┼───────┼────────┼──────┼────────┼───────┼──────┼────────┼───────┼───────┤
│ accuracy % │ 50.00 │ 100.00 │ 0.00 │ 100.00 │ 50.00 │ 0.00 │ 100.00 │  0.00 │ 50.00 │
│ problems   │     2 │      1 │    1 │      3 │     2 │    2 │      2 │     2 │     6 │
└────────────┴───────┴────────┴──────┴────────┴───────┴──────┴────────┴───────┴───────┘
`
	// Render ends every table with a blank line (tables printed one after another stay apart).
	if got := render(t, ScoresTable(&scienceqa.Scores{Problems: 6, Accuracy: acc}), Text); got != wantTable+"\n" {
		t.Errorf("table:\n%s\nwant\n%s", got, wantTable)
	}
	// Categories without problems are n/a in the table, never 0.
	na := AccuracyTable{}
	na.Set("TXT", 1, 1)
	na.Set("NO", 0, 1)
	na.Set("Avg", 1, 2)
	table := render(t, ScoresTable(&scienceqa.Scores{Problems: 2, Accuracy: na}), Text)
	if strings.Count(table, "n/a") != 6 || !strings.Contains(table, "│ accuracy % │ n/a │ n/a │ n/a │ 100.00 │ n/a │ 0.00 │  n/a │   n/a │ 50.00 │") {
		t.Errorf("table:\n%s", table)
	}
}

func TestTable4(t *testing.T) {
	tb := Table4([]LayersResult{
		{Layers: 5, Params: 2_650, ValAcc: Single(Float(61.25)), PaperLayers: 30},
		{Layers: 20, Params: 819_840, ValAcc: Single(Float(70))},
		{Layers: 3}, // no paper row with L=3, nothing measured
	})
	out := render(t, tb, Text)
	if h := rowCells(t, out, "L"); !reflect.DeepEqual(h, []string{"Params", "Val Acc (%)", "Paper L", "Paper Params (M)", "Paper Val Acc (%)"}) {
		t.Errorf("header %v", h)
	}
	for label, want := range map[string][]string{
		"5":  {"2650", "61.25", "30", "1.79", "83.85"},
		"20": {"819840", "70.00", "20", "1.37", "73.36"},
		"3":  {"n/a", "n/a", "n/a", "n/a", "n/a"},
	} {
		if got := rowCells(t, out, label); !reflect.DeepEqual(got, want) {
			t.Errorf("row %s = %v, want %v", label, got, want)
		}
	}
	paperOnly := render(t, Table4(nil), Markdown)
	if got := rowCells(t, paperOnly, "10"); !reflect.DeepEqual(got, []string{"n/a", "n/a", "10", "0.97", "55.95"}) {
		t.Errorf("paper-only row 10 = %v", got)
	}
}

func TestTable5(t *testing.T) {
	out := render(t, Table5(InitResult{RandInit: Single(Float(41.5)), ZeroInit: Single(Float(60))}), Markdown)
	for label, want := range map[string][]string{
		"Rand-Init Attention": {"41.50", "40.77"},
		"Zero-Init Attention": {"60.00", "83.85"},
		"Gain":                {"+18.50", "+43.08"},
	} {
		if got := rowCells(t, out, label); !reflect.DeepEqual(got, want) {
			t.Errorf("row %s = %v, want %v", label, got, want)
		}
	}
	out = render(t, Table5(InitResult{ZeroInit: Single(Float(60))}), Text)
	if got := rowCells(t, out, "Gain"); !reflect.DeepEqual(got, []string{"n/a", "+43.08"}) {
		t.Errorf("gain without rand-init = %v", got)
	}
}

func TestTable6(t *testing.T) {
	tb := Table6([]EpochsResult{
		{Epochs: 3, TrainLoss: Single(Float(0.5)), ValLoss: Single(Float(0.75)), ValAcc: Single(Float(55)), PaperEpochs: 15},
		{Epochs: 30, ValAcc: Single(Float(80))},
	})
	out := render(t, tb, Text)
	for label, want := range map[string][]string{
		"3":  {"0.500", "0.750", "55.00", "15", "0.022", "0.136", "82.08"},
		"30": {"n/a", "n/a", "80.00", "30", "0.004", "0.241", "83.85"},
	} {
		if got := rowCells(t, out, label); !reflect.DeepEqual(got, want) {
			t.Errorf("row %s = %v, want %v", label, got, want)
		}
	}
	if got := rowCells(t, render(t, Table6(nil), Text), "60"); !reflect.DeepEqual(got, []string{"n/a", "n/a", "n/a", "60", "0.001", "0.282", "83.94"}) {
		t.Errorf("paper-only row 60 = %v", got)
	}
}

func TestTableSave(t *testing.T) {
	base := filepath.Join(t.TempDir(), "table5")
	tb := Table5(InitResult{RandInit: Single(Float(41.5)), ZeroInit: Single(Float(60))})
	if err := tb.Save(base); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{Text, Markdown, JSON} {
		got, err := os.ReadFile(base + f.extension())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != render(t, tb, f) {
			t.Errorf("%s differs from Render", base+f.extension())
		}
	}
	for in, want := range map[string]Format{"md": Markdown, "JSON": JSON, "text": Text} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, f, err)
		}
	}
	if _, err := ParseFormat("html"); err == nil {
		t.Error("ParseFormat(html) succeeded")
	}
}

// The reference numbers are typed in by hand; these checks tie them to each other so that a typo
// in one of them fails.
func TestPaperNumbersConsistent(t *testing.T) {
	// ScienceQA: Avg is the mean over G1-6 and G7-12 weighted by their share of the test split, the
	// same share for every row. Two-decimal rounding moves the implied share by < 0.01.
	var shares []float64
	for _, r := range PaperScienceQARows() {
		a := r.Accuracy
		if len(a) != len(Categories) {
			t.Errorf("%s: %d categories, want %d", r.Name, len(a), len(Categories))
		}
		shares = append(shares, (a["Avg"]-a["G7-12"])/(a["G1-6"]-a["G7-12"]))
		lo := math.Min(a["NAT"], math.Min(a["SOC"], a["LAN"]))
		hi := math.Max(a["NAT"], math.Max(a["SOC"], a["LAN"]))
		if a["Avg"] < lo || a["Avg"] > hi {
			t.Errorf("%s: Avg %v outside the subject range [%v, %v]", r.Name, a["Avg"], lo, hi)
		}
	}
	for i, s := range shares {
		if math.Abs(s-shares[len(shares)-1]) > 0.01 {
			t.Errorf("row %d implies a G1-6 share %.4f, row %d %.4f", i, s, len(shares)-1, shares[len(shares)-1])
		}
	}
	// Tables 4, 5 and 6 share the default setting (L=30, zero-init, 30 epochs on val).
	t4, t5, t6 := PaperTable4(), PaperTable5(), PaperTable6()
	if t4[2].ValAcc != t5.ZeroInit || t6[1].ValAcc != t5.ZeroInit {
		t.Errorf("default setting differs: table 4 %v, 5 %v, 6 %v", t4[2].ValAcc, t5.ZeroInit, t6[1].ValAcc)
	}
	if g := t5.ZeroInit - t5.RandInit; math.Abs(g-43.08) > 1e-9 {
		t.Errorf("table 5 gain %v, paper prints +43.08", g)
	}
	// Table 4's params are 10·L·4096 prompts + 32·L gates + one visual projection P (≈0.56M): the
	// three rows must agree on P. They agree to ±0.01M, not to their two-decimal rounding (±0.005M
	// leaves an empty intersection by 0.00008M), so the paper rounded loosely; a typo in a digit
	// still fails.
	const tol = 0.01
	pLo, pHi := math.Inf(-1), math.Inf(1)
	for _, r := range t4 {
		adapter := float64(10*r.Layers*4096+32*r.Layers) / 1e6
		pLo = math.Max(pLo, r.ParamsMillions-tol-adapter)
		pHi = math.Min(pHi, r.ParamsMillions+tol-adapter)
	}
	if pLo > pHi {
		t.Errorf("table 4 params imply no common projection size (%.4f > %.4f)", pLo, pHi)
	}
}
