package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/adapterlab/llama-adapter/datasets/scienceqa"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// NA is how a missing value prints in every table format except JSON (where it is null).
const NA = "n/a"

// Row sources.
const (
	SourceMeasured = "measured"
	SourcePaper    = "paper"
)

// Column is a value column of a Table.
type Column struct {
	Name string `json:"name"`
	// Format is the fmt verb for the column's values ("%.2f" when empty).
	Format string `json:"format,omitempty"`
}

// Row is one table row: a label (the first column) and one value per Column; nil is n/a.
type Row struct {
	Label  string     `json:"label"`
	Source string     `json:"source"` // SourceMeasured or SourcePaper
	Values []*float64 `json:"values"`
	// Format, when set, overrides the columns' formats for this row (e.g. "%+.2f" for a gain).
	Format string `json:"format,omitempty"`
}

// Table is a results table independent of its rendering: Render prints it as a terminal table
// (tablewriter), Markdown (tablewriter's Markdown renderer) or JSON.
type Table struct {
	Title   string   `json:"title"`
	Label   string   `json:"label"` // header of the label column
	Columns []Column `json:"columns"`
	Rows    []Row    `json:"rows"`
	Notes   []string `json:"notes,omitempty"`
}

// Cell returns the printed text of row i, value column j ("n/a" for a missing value).
func (t *Table) Cell(i, j int) string {
	r := t.Rows[i]
	if j >= len(r.Values) || r.Values[j] == nil {
		return NA
	}
	format := r.Format
	if format == "" {
		format = t.Columns[j].Format
	}
	if format == "" {
		format = "%.2f"
	}
	return fmt.Sprintf(format, *r.Values[j])
}

// Format selects a table rendering.
type Format int

// Table renderings.
const (
	Text     Format = iota // box-drawn terminal table
	Markdown               // GitHub-flavored Markdown
	JSON                   // the Table as indented JSON
)

// ParseFormat maps "text", "markdown" (or "md") and "json" to a Format, for command-line flags.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "text", "txt", "terminal":
		return Text, nil
	case "markdown", "md":
		return Markdown, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("results: unknown table format %q (want text, markdown or json)", s)
}

// extension is the file extension Save uses for a format.
func (f Format) extension() string {
	switch f {
	case Markdown:
		return ".md"
	case JSON:
		return ".json"
	}
	return ".txt"
}

// Render writes the table to w in format f.
func (t *Table) Render(w io.Writer, f Format) error {
	switch f {
	case JSON:
		data, err := marshalIndent(t)
		if err != nil {
			return fmt.Errorf("results: table %q: %w", t.Title, err)
		}
		_, err = w.Write(data)
		return err
	case Text, Markdown:
		return t.renderGrid(w, f)
	}
	return fmt.Errorf("results: table %q: unknown format %d", t.Title, f)
}

// String renders the table as text.
func (t *Table) String() string {
	var b bytes.Buffer
	if err := t.Render(&b, Text); err != nil {
		return err.Error()
	}
	return b.String()
}

// Save writes the table as base+".txt", base+".md" and base+".json", each atomically.
func (t *Table) Save(base string) error {
	for _, f := range []Format{Text, Markdown, JSON} {
		var b bytes.Buffer
		if err := t.Render(&b, f); err != nil {
			return err
		}
		if err := WriteFileAtomic(base+f.extension(), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (t *Table) renderGrid(w io.Writer, f Format) error {
	header := make([]string, 0, len(t.Columns)+1)
	header = append(header, t.Label)
	align := tw.Alignment{tw.AlignLeft}
	for _, c := range t.Columns {
		header = append(header, c.Name)
		align = append(align, tw.AlignRight)
	}
	opts := []tablewriter.Option{
		// Auto-format would upper-case headers and turn "G1-6" into "G1 6".
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(align),
	}
	if f == Markdown {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewMarkdown()))
	}
	var body bytes.Buffer
	tbl := tablewriter.NewTable(&body, opts...)
	tbl.Header(header)
	for i, r := range t.Rows {
		cells := make([]string, 0, len(t.Columns)+1)
		cells = append(cells, r.Label)
		for j := range t.Columns {
			cells = append(cells, t.Cell(i, j))
		}
		if err := tbl.Append(cells); err != nil {
			return fmt.Errorf("results: table %q: %w", t.Title, err)
		}
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("results: table %q: %w", t.Title, err)
	}

	var out bytes.Buffer
	if f == Markdown {
		if t.Title != "" {
			fmt.Fprintf(&out, "**%s**\n\n", t.Title)
		}
		out.Write(body.Bytes())
		if len(t.Notes) > 0 {
			out.WriteString("\n")
			for _, n := range t.Notes {
				fmt.Fprintf(&out, "- %s\n", n)
			}
		}
	} else {
		if t.Title != "" {
			fmt.Fprintf(&out, "%s\n", t.Title)
		}
		out.Write(body.Bytes())
		for _, n := range t.Notes {
			fmt.Fprintf(&out, "  %s\n", n)
		}
	}
	out.WriteString("\n") // Tables printed one after another stay apart.
	_, err := w.Write(out.Bytes())
	return err
}

// MeasuredRow is a measured result for the ScienceQA category table.
type MeasuredRow struct {
	Name     string
	Accuracy AccuracyTable
}

// SummaryRow turns a run summary into a MeasuredRow of its primary protocol, named after the run, its split (if
// recorded) and the protocol.
func SummaryRow(s *Summary) MeasuredRow {
	name := s.RunID + " ("
	if s.Split != "" {
		name += s.Split + ", "
	}
	return MeasuredRow{Name: name + s.Primary + ")", Accuracy: s.PrimaryAccuracy()}
}

// ProtocolRows are a run's rows, one per protocol (the primary first), each named "<run id> (<protocol>)".
func ProtocolRows(s *Summary) []MeasuredRow {
	var rows []MeasuredRow
	for _, p := range s.Protocols() {
		rows = append(rows, MeasuredRow{Name: s.RunID + " (" + p + ")", Accuracy: s.Scores[p]})
	}
	return rows
}

// BaselineRows are a summary's baselines as rows for the protocols that ran: a protocol-independent baseline once
// ("<baseline> (same problems)"), a per-protocol one once per protocol ("<baseline>, <protocol> (same problems)").
func BaselineRows(s *Summary) []MeasuredRow {
	var rows []MeasuredRow
	for _, b := range slices.Sorted(maps.Keys(s.Baselines)) {
		for _, p := range append([]string{AnyProtocol}, s.Protocols()...) {
			cats, ok := s.Baselines[b][p]
			if !ok {
				continue
			}
			name := b
			if p != AnyProtocol {
				name += ", " + p
			}
			t := AccuracyTable{}
			for c, v := range cats {
				t[c] = Score{Accuracy: v, Total: 1}
			}
			rows = append(rows, MeasuredRow{Name: name + " (same problems)", Accuracy: t})
		}
	}
	return rows
}

// ScienceQATable is the paper's category table (columns NAT SOC LAN TXT IMG NO G1-6 G7-12 Avg): the
// reference rows first, labeled "(paper)", then the measured rows. Categories a row lacks print as n/a.
func ScienceQATable(title string, measured []MeasuredRow, refs []ReferenceRow) *Table {
	t := &Table{Title: title, Label: "Method"}
	for _, c := range Categories {
		t.Columns = append(t.Columns, Column{Name: c, Format: "%.2f"})
	}
	for _, r := range refs {
		row := Row{Label: r.Name + " (paper)", Source: SourcePaper}
		for _, c := range Categories {
			if v, ok := r.Accuracy[c]; ok {
				row.Values = append(row.Values, Float(v))
			} else {
				row.Values = append(row.Values, nil)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	for _, m := range measured {
		row := Row{Label: m.Name, Source: SourceMeasured}
		for _, c := range Categories {
			if v, ok := m.Accuracy.Percent(c); ok {
				row.Values = append(row.Values, Float(v))
			} else {
				row.Values = append(row.Values, nil)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	if len(refs) > 0 {
		t.Notes = append(t.Notes, "Paper rows: ScienceQA test split (LLaMA-Adapter Table 1; random chance and GPT-3 CoT from Lu et al. 2022).")
	}
	t.Notes = append(t.Notes, "Accuracy in %; n/a: no problem of that category was evaluated (or the source does not report it).")
	return t
}

// ScoresTable is the table of one set of scores (the score command's): accuracy in % and the number of problems
// of each category, in the paper's column order; an n/a category prints n/a and 0 problems.
func ScoresTable(s *scienceqa.Scores) *Table {
	t := &Table{}
	acc := Row{Label: "accuracy %", Source: SourceMeasured}
	num := Row{Label: "problems", Source: SourceMeasured, Format: "%.0f"}
	for _, c := range Categories {
		t.Columns = append(t.Columns, Column{Name: c, Format: "%.2f"})
		if v, ok := s.Accuracy[c]; ok {
			acc.Values, num.Values = append(acc.Values, Float(v.Accuracy)), append(num.Values, Float(float64(v.Total)))
		} else {
			acc.Values, num.Values = append(acc.Values, nil), append(num.Values, Float(0))
		}
	}
	t.Rows = []Row{acc, num}
	return t
}

// LayersResult is a measured row of the insertion-layers ablation (paper Table 4).
type LayersResult struct {
	Layers int   // adapted (topmost) layers L
	Params int64 // trainable parameters
	ValAcc MeanStd
	// Final losses, for LayersFigure (the paper's Table 4 has no loss columns).
	TrainLoss, ValLoss MeanStd
	// PaperLayers is the paper's L this row is compared with (0: the same as Layers). Small models
	// have fewer layers than LLaMA-7B, so a sweep maps its L to the paper's 10/20/30 explicitly.
	PaperLayers int
}

// paperL is the paper's L the row is compared with: PaperLayers, or Layers when that is 0.
func (r LayersResult) paperL() int {
	if r.PaperLayers == 0 {
		return r.Layers
	}
	return r.PaperLayers
}

// Table4 renders the insertion-layers ablation: each measured row beside the paper's row for its
// PaperLayers (n/a if the paper has no such L), with a ± column when the accuracies were averaged over
// seeds. With no measured rows it lists the paper's rows alone.
func Table4(rows []LayersResult) *Table {
	spread := false
	for _, r := range rows {
		spread = spread || averaged(r.ValAcc)
	}
	t := &Table{
		Title:   "Table 4: number of adapted layers (ScienceQA val)",
		Label:   "L",
		Columns: []Column{{Name: "Params", Format: "%.0f"}},
		Notes:   []string{"Paper: LLaMA-7B, K=10, multi-modal (params include the visual projection)."},
	}
	t.Columns = append(t.Columns, measureColumns("Val Acc (%)", "%.2f", spread)...)
	t.Columns = append(t.Columns,
		Column{Name: "Paper L", Format: "%.0f"},
		Column{Name: "Paper Params (M)", Format: "%.2f"},
		Column{Name: "Paper Val Acc (%)", Format: "%.2f"})
	paper := PaperTable4()
	for _, r := range orPaperRows(rows, paper, func(p PaperLayers) LayersResult { return LayersResult{Layers: p.Layers} }) {
		pl := r.paperL()
		var params *float64
		if r.Params > 0 {
			params = Float(float64(r.Params))
		}
		ref := paperCells(paper, 3, func(p PaperLayers) bool { return p.Layers == pl }, func(p PaperLayers) []*float64 {
			return []*float64{Float(float64(p.Layers)), Float(p.ParamsMillions), Float(p.ValAcc)}
		})
		row := Row{Label: fmt.Sprint(r.Layers), Source: SourceMeasured, Values: []*float64{params}}
		row.Values = append(append(row.Values, r.ValAcc.cells(spread)...), ref...)
		t.Rows = append(t.Rows, row)
	}
	return t
}

// InitResult is the measured zero-init vs rand-init ablation (paper Table 5); a nil mean is not measured.
type InitResult struct {
	RandInit, ZeroInit MeanStd // val accuracy, percent
	// GainStd is the spread of the per-seed gain (zero-init minus rand-init of equal seed); the gain itself is
	// ZeroInit's mean minus RandInit's.
	GainStd *float64
}

// Table5 renders the zero-init attention ablation in the paper's layout (Rand-Init, Zero-Init, Gain),
// measured beside the paper, with a ± column when the accuracies were averaged over seeds.
func Table5(r InitResult) *Table {
	p := PaperTable5()
	spread := averaged(r.RandInit, r.ZeroInit)
	gain := MeanStd{Std: r.GainStd}
	if r.RandInit.Mean != nil && r.ZeroInit.Mean != nil {
		gain.Mean = Float(*r.ZeroInit.Mean - *r.RandInit.Mean)
	}
	row := func(label string, m MeanStd, paper float64) Row {
		return Row{Label: label, Source: SourceMeasured, Values: append(m.cells(spread), Float(paper))}
	}
	t := &Table{
		Title: "Table 5: zero-init attention (ScienceQA val)",
		Label: "Setting",
		Columns: append(measureColumns("Val Acc (%)", "%.2f", spread),
			Column{Name: "Paper Val Acc (%)", Format: "%.2f"}),
		Rows: []Row{
			row("Rand-Init Attention", r.RandInit, p.RandInit),
			row("Zero-Init Attention", r.ZeroInit, p.ZeroInit),
		},
	}
	g := row("Gain", gain, p.ZeroInit-p.RandInit)
	if spread {
		// A Table has one format per column or per row: the gain row's "%+.2f" would print its spread as a signed
		// number, so with a spread the row keeps the column formats (a negative gain still shows its sign) and
		// the label says which way the difference goes.
		g.Label = "Gain (Zero − Rand)"
	} else {
		g.Format = "%+.2f"
	}
	t.Rows = append(t.Rows, g)
	return t
}

// EpochsResult is a measured row of the epochs ablation (paper Table 6); a nil mean is not measured.
type EpochsResult struct {
	Epochs             float64 // may be fractional (a halved one-epoch budget)
	TrainLoss, ValLoss MeanStd
	ValAcc             MeanStd
	// PaperEpochs is the paper's epoch count this row is compared with (0: the same as Epochs).
	PaperEpochs int
}

// paperEpochs is the paper's epoch count the row is compared with: PaperEpochs, or Epochs when that is 0 and
// Epochs is whole (a fractional budget has no paper row of its own).
func (r EpochsResult) paperEpochs() int {
	if r.PaperEpochs == 0 && r.Epochs == math.Trunc(r.Epochs) {
		return int(r.Epochs)
	}
	return r.PaperEpochs
}

// Table6 renders the over-fitting ablation: train loss, val loss and val accuracy per epoch budget (each with
// a ± column when the measures were averaged over seeds), each measured row beside the paper's row for its
// PaperEpochs. With no measured rows it lists the paper's rows alone.
func Table6(rows []EpochsResult) *Table {
	spread := false
	for _, r := range rows {
		spread = spread || averaged(r.TrainLoss, r.ValLoss, r.ValAcc)
	}
	t := &Table{
		Title: "Table 6: training epochs (ScienceQA val)",
		Label: "Epochs",
	}
	t.Columns = append(t.Columns, measureColumns("Train Loss", "%.3f", spread)...)
	t.Columns = append(t.Columns, measureColumns("Val Loss", "%.3f", spread)...)
	t.Columns = append(t.Columns, measureColumns("Val Acc (%)", "%.2f", spread)...)
	t.Columns = append(t.Columns,
		Column{Name: "Paper Epochs", Format: "%.0f"},
		Column{Name: "Paper Train Loss", Format: "%.3f"},
		Column{Name: "Paper Val Loss", Format: "%.3f"},
		Column{Name: "Paper Val Acc (%)", Format: "%.2f"})
	paper := PaperTable6()
	for _, r := range orPaperRows(rows, paper, func(p PaperEpochs) EpochsResult { return EpochsResult{Epochs: float64(p.Epochs)} }) {
		pe := r.paperEpochs()
		ref := paperCells(paper, 4, func(p PaperEpochs) bool { return p.Epochs == pe }, func(p PaperEpochs) []*float64 {
			return []*float64{Float(float64(p.Epochs)), Float(p.TrainLoss), Float(p.ValLoss), Float(p.ValAcc)}
		})
		var vals []*float64
		for _, m := range []MeanStd{r.TrainLoss, r.ValLoss, r.ValAcc} {
			vals = append(vals, m.cells(spread)...)
		}
		t.Rows = append(t.Rows, Row{Label: fmt.Sprint(r.Epochs), Source: SourceMeasured, Values: append(vals, ref...)})
	}
	return t
}

// orPaperRows returns the measured rows, or with none an empty measured row per paper row (made by row), so that
// a table lists the paper's rows alone.
func orPaperRows[R, P any](rows []R, paper []P, row func(P) R) []R {
	if len(rows) > 0 {
		return rows
	}
	for _, p := range paper {
		rows = append(rows, row(p))
	}
	return rows
}

// paperCells returns the cells of the paper row that match accepts, or n empty cells when the paper has none.
func paperCells[P any](paper []P, n int, match func(P) bool, cells func(P) []*float64) []*float64 {
	for _, p := range paper {
		if match(p) {
			return cells(p)
		}
	}
	return make([]*float64, n)
}

// DecodeTable parses a table written with Render(w, JSON).
func DecodeTable(data []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("results: decode table: %w", err)
	}
	for i, r := range t.Rows {
		if len(r.Values) != len(t.Columns) {
			return nil, fmt.Errorf("results: decode table %q: row %d (%s) has %d values for %d columns", t.Title, i, r.Label, len(r.Values), len(t.Columns))
		}
	}
	return &t, nil
}
