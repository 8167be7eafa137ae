package main

import (
	"fmt"
	"path/filepath"

	"github.com/adapterlab/llama-adapter/experiments/lib/pipeline"
	"github.com/adapterlab/llama-adapter/results"
)

// param is a sweepable pipeline setting as data: its flag (a sweep value is set through the pipeline's own flag,
// so it accepts exactly what the command line does), how the measured runs' shared settings name it, and what
// its report looks like. Settings without an entry get the generic table.
type param struct {
	// Flag is the pipeline flag; Aliases are other names a sweep's "param" may use.
	Flag    string
	Aliases []string
	// Describe names the setting in the table's "Measured runs" note (nil: not named there).
	Describe func(c pipeline.Config) string
	// Table builds the sweep's own table (the paper's Tables 4-6); nil: genericTable with Generic.
	Table   func(s *Sweep, groups []group, acc []results.MeanStd) (*results.Table, error)
	Generic genericStyle
	// Figure and FigureTitle name the loss-curve figure (empty: loss_curves).
	Figure, FigureTitle string
	// Curve labels a value's loss curve ("" or nil: "-flag=<row label>").
	Curve func(value string) string
	// LayersFigure adds the accuracy and loss by L figure.
	LayersFigure bool
}

// genericStyle is what a parameter adds to the generic table.
type genericStyle struct {
	Title, Label string
	Columns      []results.Column
	// Values are a row's values for Columns.
	Values func(g group) []*float64
	// Finish adds rows and notes once every row is in.
	Finish func(t *results.Table, groups []group)
}

// params are the settings the reports know, in the order the "Measured runs" note names them.
var params = []*param{
	{Flag: "model", Describe: func(c pipeline.Config) string { return "model " + filepath.Base(c.Model.Path) }},
	{Flag: "modality", Describe: func(c pipeline.Config) string { return string(c.Vision.Modality) }, Generic: modalityStyle},
	{Flag: "K", Aliases: []string{"prompt-len", "prompt_len"}, Describe: func(c pipeline.Config) string { return fmt.Sprintf("K=%d", c.Adapter.PromptLen) },
		Generic: genericStyle{Title: "Adaption prompt length K (the paper has no such table)", Label: "K",
			Columns: []results.Column{{Name: "Paper Val Acc (%)", Format: "%.2f"}},
			Values: func(g group) []*float64 {
				if g.Value == "10" {
					return []*float64{results.Float(results.PaperTable5().ZeroInit)}
				}
				return []*float64{nil}
			},
			Finish: func(t *results.Table, _ []group) {
				t.Notes = append(t.Notes, "Paper Val Acc: the paper's K=10, L=30 result on ScienceQA val (Tables 4-6), for scale only.")
			}}},
	{Flag: "L", Aliases: []string{"layers"}, Describe: func(c pipeline.Config) string { return fmt.Sprintf("L=%d", c.Adapter.Layers) },
		Table: table4, LayersFigure: true},
	{Flag: "init", Describe: func(c pipeline.Config) string {
		return string(c.Adapter.Init) + "-init " + string(c.Adapter.Gate) + " gates"
	}, Table: table5, Figure: "figure5", FigureTitle: "Figure 5: training loss, zero-init vs random-init attention",
		Curve: func(v string) string {
			return map[string]string{"zero": "zero-init attention", "random": "random-init attention"}[v]
		}},
	{Flag: "epochs", Describe: func(c pipeline.Config) string { return fmt.Sprintf("epochs=%g", c.Train.Epochs) }, Table: table6},
	{Flag: "format", Generic: formatStyle},
}

// paramOf returns the parameter a sweep's "param" names (a flag or an alias); unknown settings get a bare entry.
func paramOf(name string) *param {
	for _, p := range params {
		if p.Flag == name {
			return p
		}
		for _, a := range p.Aliases {
			if a == name {
				return p
			}
		}
	}
	return &param{Flag: name}
}

// modalityStyle is the text vs multimodal table: IMG accuracy beside the average, the paper's Table 1 rows, and
// the per-seed gain of multimodal over text.
var modalityStyle = genericStyle{
	Title: "Text vs multimodal (paper: Table 1, LLaMA-Adapter_T vs LLaMA-Adapter, test split)",
	Label: "Modality",
	Columns: []results.Column{{Name: "IMG Acc (%)", Format: "%.2f"}, results.SpreadColumn("IMG Acc (%)", "%.2f"),
		{Name: "Paper Acc (%)", Format: "%.2f"}, {Name: "Paper IMG Acc (%)", Format: "%.2f"}},
	Values: func(g group) []*float64 {
		img := g.measure(imgAcc)
		name := map[string]string{"text": "LLaMA-Adapter_T", "multimodal": "LLaMA-Adapter"}[g.Value]
		var pa, pi *float64
		if ref := paperRow(name); ref != nil {
			pa, pi = results.Float(ref["Avg"]), results.Float(ref["IMG"])
		}
		return []*float64{img.Mean, img.Std, pa, pi}
	},
	Finish: func(t *results.Table, groups []group) {
		text, mm := findGroup(groups, "text"), findGroup(groups, "multimodal")
		if text != nil && mm != nil {
			pt, pm := paperRow("LLaMA-Adapter_T"), paperRow("LLaMA-Adapter")
			gain := func(f func(measuredRun) *float64) results.MeanStd { return pairedGain(mm, text, f) }
			ga, gi := gain(valAcc), gain(imgAcc)
			t.Rows = append(t.Rows, results.Row{Label: "Gain (multimodal − text)", Source: results.SourceMeasured,
				Values: []*float64{nil, nil, nil, nil, nil, ga.Mean, ga.Std, gi.Mean, gi.Std,
					results.Float(pm["Avg"] - pt["Avg"]), results.Float(pm["IMG"] - pt["IMG"])}})
		}
		t.Notes = append(t.Notes, "IMG: problems with an image context. Paper columns: ScienceQA test split (Table 1); the gain row's ± is the spread of the per-seed gain.")
	},
}

// formatStyle is the prompt-format table: each format's own zero-shot baseline (the pretrained model prompted in
// that format) beside its trained accuracy, in the report's metric and in letter scoring, which reads the whole
// prompt (options included).
var formatStyle = genericStyle{
	Title: "Prompt format (ScienceQA base_prompt.py's <input>-<output>; QM: QCM without the Context line)",
	Label: "Format",
	Columns: []results.Column{{Name: "Zero-shot Acc (%)", Format: "%.2f"}, {Name: "Gain over zero-shot", Format: "%.2f"},
		{Name: "Letter Acc (%)", Format: "%.2f"}, {Name: "Zero-shot Letter Acc (%)", Format: "%.2f"}},
	Values: func(g group) []*float64 {
		// The zero-shot baseline is the same for every seed of a value (same prompts, same problems).
		zm, zl := g.Runs[0].zeroShot()
		acc, letter := g.measure(valAcc), g.measure(func(m measuredRun) *float64 { return m.letterAccuracy() })
		var gain *float64
		if zm != nil && acc.Mean != nil {
			gain = results.Float(*acc.Mean - *zm)
		}
		return []*float64{zm, gain, letter.Mean, zl}
	},
	Finish: func(t *results.Table, _ []group) {
		t.Notes = append(t.Notes, "Zero-shot: the pretrained model prompted in the row's own format on the same problems (each format has its own baseline); gain: Val Acc − Zero-shot Acc (stats.md: paired intervals and tests).")
	},
}
