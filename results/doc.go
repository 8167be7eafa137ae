// Package results holds what a run leaves behind and how it is reported.
//
// Run records: a run folder results/runs/<run-id>/ has summary.json (Summary: configuration, per-category
// accuracy with counts, timings, versions, backend, device, final losses, trainable parameters, a
// complete flag) and metrics.jsonl (one Metric per logged step or epoch, appended and fsynced line by
// line by MetricsWriter; ReadMetrics tolerates the truncated last line of a killed process and reports
// a malformed line as "file:line: ..."). ListRuns reads every summary under a root.
//
// Every file the project writes goes through models/atomicfile (here as WriteFileAtomic / WriteJSONAtomic):
// a temporary file in the same directory, fsync, rename, directory fsync. Readers see the old file or the
// new one, never a part.
//
// Tables (github.com/olekukonko/tablewriter) print measured results beside the paper's: the ScienceQA
// category table (NAT SOC LAN TXT IMG NO G1-6 G7-12 Avg) with the paper's reference rows, and the
// ablation Tables 4 (adapted layers), 5 (zero-init vs rand-init attention) and 6 (epochs). A Table renders
// as a terminal table, Markdown or JSON; a missing value prints as n/a (null in JSON), never as 0.
//
// Figures (gonum.org/v1/plot) are saved as PNG and SVG: one run's loss curve, the paper's Figure 5
// (training loss per epoch, zero-init vs random-init, mean and min–max band over seeds) and accuracy /
// loss against the number of adapted layers; GatesFigure draws adapters' final gates as layer × head heat maps.
//
// Statistics (stats.go) are implemented here once: the Wilson interval of an accuracy, the paired difference of
// two settings over the same problems and seeds with a seeded bootstrap interval (problems resampled, seeds kept
// as strata), the exact sign test over problems (the exact McNemar test with one seed), and the verdict words
// derived from the interval.
package results
