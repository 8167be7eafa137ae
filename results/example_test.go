package results_test

import (
	"fmt"
	"os"

	"github.com/adapterlab/llama-adapter/results"
)

// A sweep on a small model compares its measured zero-init / rand-init accuracy with the paper's.
func ExampleTable5() {
	t := results.Table5(results.InitResult{RandInit: results.Single(results.Float(38.5)), ZeroInit: results.Single(results.Float(71.25))})
	if err := t.Render(os.Stdout, results.Markdown); err != nil {
		fmt.Println(err)
	}
	// Output:
	// **Table 5: zero-init attention (ScienceQA val)**
	//
	// | Setting             | Val Acc (%) | Paper Val Acc (%) |
	// |:--------------------|------------:|------------------:|
	// | Rand-Init Attention |       38.50 |             40.77 |
	// | Zero-Init Attention |       71.25 |             83.85 |
	// | Gain                |      +32.75 |            +43.08 |
}

// A category the evaluation had no problem for is n/a, never 0.
func ExampleScienceQATable() {
	acc := results.AccuracyTable{}
	acc.Set("NAT", 30, 40)
	acc.Set("SOC", 0, 0) // no social-science problem in this split
	acc.Set("Avg", 30, 40)
	refs := results.PaperScienceQARows()[3:] // LLaMA-Adapter
	t := results.ScienceQATable("ScienceQA (fold 0)", []results.MeasuredRow{{Name: "run-1", Accuracy: acc}}, refs)
	fmt.Print(t)
	// Output:
	// ScienceQA (fold 0)
	// ┌───────────────────────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┐
	// │ Method                │   NAT │   SOC │   LAN │   TXT │   IMG │    NO │  G1-6 │ G7-12 │   Avg │
	// ├───────────────────────┼───────┼───────┼───────┼───────┼───────┼───────┼───────┼───────┼───────┤
	// │ LLaMA-Adapter (paper) │ 84.37 │ 88.30 │ 84.36 │ 83.72 │ 80.32 │ 86.90 │ 85.83 │ 84.05 │ 85.19 │
	// │ run-1                 │ 75.00 │   n/a │   n/a │   n/a │   n/a │   n/a │   n/a │   n/a │ 75.00 │
	// └───────────────────────┴───────┴───────┴───────┴───────┴───────┴───────┴───────┴───────┴───────┘
	//   Paper rows: ScienceQA test split (LLaMA-Adapter Table 1; random chance and GPT-3 CoT from Lu et al. 2022).
	//   Accuracy in %; n/a: no problem of that category was evaluated (or the source does not report it).
}
