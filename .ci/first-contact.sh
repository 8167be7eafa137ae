#!/usr/bin/env bash
# What a newcomer sees first, checked: the main command's help, the default run (SmolLM2, installed on demand) at a tiny size in a
# fresh runs folder, and the same command again (a complete run prints its recorded table instead of rerunning).
#
# Checks: -h exits 0 and lists the train flags and the subcommands; the run prints the backend line, the compile
# line, progress for training and the primary protocol's scoring, the accuracy table and the run folder; the second run skips,
# prints the table and says how to run afresh. Takes well under a minute after the build on the XLA CPU backend.
#
# Usage: bash .ci/first-contact.sh   (extra arguments are passed to both runs, e.g. -backend go:ops_sequential)
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "first-contact: FAIL: $*" >&2
	exit 1
}
# expect FILE PATTERN WHAT: the output must contain the (extended regex) pattern.
expect() { grep -Eq -- "$2" "$1" || { sed 's/\r/\n/g' "$1" | tail -40 >&2; fail "$3 (no /$2/ in the output)"; }; }

echo "== first contact: go build ./experiments/scienceqa"
start=$SECONDS
go build -o "$tmp/scienceqa" ./experiments/scienceqa
echo "built in $((SECONDS - start)) s"

echo "== scienceqa -h"
"$tmp/scienceqa" -h >"$tmp/help.txt" 2>&1 || fail "-h exited $?"
expect "$tmp/help.txt" '^subcommands:' "-h lists the subcommands"
for f in -train-limit -eval-limit -runs -force -preset -model -backend -install -devices; do
	expect "$tmp/help.txt" "^  $f( |$)" "-h lists train's flag $f"
done
expect "$tmp/help.txt" 'pjrt|PJRT' "-backend's help names the XLA CPU plugin"

args=(-runs "$tmp/runs" -zero-shot-cache "$tmp/zero-shot" -train-limit 16 -eval-limit 16 -epochs 1 "$@")
# timed_run OUT WHAT: runs the command into $tmp/OUT, sets $took to its seconds, fails saying WHAT failed.
timed_run() {
	local start=$SECONDS
	"$tmp/scienceqa" "${args[@]}" >"$tmp/$1" 2>&1 || { tail -40 "$tmp/$1" >&2; fail "$2 failed"; }
	took=$((SECONDS - start))
}
echo "== scienceqa ${args[*]}"
timed_run run1.txt "the tiny run"
first=$took
expect "$tmp/run1.txt" '^backend: (go|xla) ' "the run says which backend it uses"
expect "$tmp/run1.txt" 'compiling the training step' "the run says it compiles before the first step"
expect "$tmp/run1.txt" 'train e1 loss [0-9.]+ .*\(16/16|train e1 loss [0-9.]+ .*[0-9]+/[0-9]+' "training shows progress"
expect "$tmp/run1.txt" '^cloze: 16 problems \(' "cloze scoring (the preset's primary protocol) announces itself"
expect "$tmp/run1.txt" '^cloze: 16 problems in ' "cloze scoring reports"
expect "$tmp/run1.txt" 'ScienceQA accuracy \(%\), fold 4 of 5' "the run prints the accuracy table"
expect "$tmp/run1.txt" '^run folder: ' "the run names its folder"
dir=$(sed -n 's/^run folder: //p' "$tmp/run1.txt")
for f in config.json summary.json adapter.safetensors predictions.json metrics.jsonl; do
	[[ -s $dir/$f ]] || fail "run folder lacks $f"
done
grep -q '"environment"' "$dir/summary.json" || fail "summary.json lacks the recording environment"

echo "== the same command again (complete: prints the recorded table)"
timed_run run2.txt "the second run"
second=$took
expect "$tmp/run2.txt" 'is complete: skipping it' "the second run skips"
expect "$tmp/run2.txt" 'ScienceQA accuracy \(%\), fold 4 of 5' "the skip prints the table"
expect "$tmp/run2.txt" 'To run it afresh: -runs DIR .* -force' "the skip says how to run afresh"
if grep -q 'compiling the training step' "$tmp/run2.txt"; then fail "the second run trained"; fi

# The two tables' measured rows agree (the skip prints what the run recorded).
row() { grep -E '^│ (smollm2|stories260K)-' "$1" | head -1; }
[[ "$(row "$tmp/run1.txt")" == "$(row "$tmp/run2.txt")" ]] || fail "the skip's table differs from the run's"

backend=$(sed -n 's/^backend: //p' "$tmp/run1.txt")
echo "first contact OK: tiny run ${first} s, skip ${second} s (backend: $backend)"
