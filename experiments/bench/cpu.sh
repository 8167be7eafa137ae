#!/usr/bin/env bash
# CPU comparison in one run on this machine, for each shape: adapter training (fwd+bwd+AdamW), letter-scoring
# evaluation and KV-cache generation on the pure-Go backend and on XLA's CPU backend (when installed by
# .ci/install-pjrt-cpu.sh); the PyTorch + peft reference's training step with the same shapes when $TORCH_PYTHON
# names a python3 with torch, transformers and peft; llama2.c's run.c generating with the real stories260K when
# $LLAMA2C_RUN names a compiled run.c (gcc -O2 -o run run.c -lm; not part of this repository).
# Shapes: stories260K and tiny (B=8 × 256 tokens, K=10, all layers adapted), two LLaMA-7B layers (B=1 × 128,
# K=10, L=2) in float32 and bfloat16, training only, and SmolLM2-135M (the default run's model, random weights,
# float32, B=8 × 128, K=10, L=30: training, letter scoring of 4 batches, 64 tokens generated after a 64-token prompt;
# the pure-Go backend runs fewer steps, it is ~10× slower).
# $SHAPES picks shapes (space-separated; default all). $REPEAT (default 1) runs XLA and PyTorch that many times,
# alternated (xla, torch, xla, torch, …), so that a load change on a shared machine shows as a spread between the
# repeats instead of biasing one engine; repeat r > 1 writes <shape>_<engine>_<r>.json.
# Results: results/perf/<shape>_<engine>.json and a summary table on stdout (ratios against pure Go and PyTorch of
# the same repeat, peak resident set per process).
#   [TORCH_PYTHON=python3] [LLAMA2C_RUN=./run] [SHAPES="smollm2"] [REPEAT=2] bash experiments/bench/cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${PERF_DIR:-results/perf} # $PERF_DIR: another folder (e.g. for a run on a loaded machine)
mkdir -p "$out"
bin=$(mktemp -d)/bench
go build -o "$bin" ./experiments/bench
plugin=$(bash .ci/install-pjrt-cpu.sh) || plugin=""
small=(-seq 256 -batch 8 -steps 10 -warmup 2 -eval-batches 8 -gen-tokens 255 -gen-prompt 1)
big=(-layers 2 -L 2 -seq 128 -batch 1 -steps 5 -warmup 1 -only train)
smollm2=(-preset smollm2 -seq 128 -batch 8 -steps 4 -warmup 1 -eval-batches 4 -gen-prompt 64 -gen-tokens 64)
go_smollm2=(-steps 1 -warmup 0 -eval-batches 1 -gen-prompt 16 -gen-tokens 8) # appended for the pure-Go backend (later flags win)
want() { [[ -z ${SHAPES:-} || " $SHAPES " == *" $1 "* ]]; }
# shape name, reference flags, extra flags for the pure-Go run ("skip": none), then the bench flags
run_shape() {
	local name=$1 pyflags=$2 goextra=$3
	shift 3
	want "$name" || return 0
	if [[ $goextra != skip ]]; then # the pure-Go backend is too slow for 7B layers
		# shellcheck disable=SC2086
		GOMLX_BACKEND=go:ops_sequential "$bin" "$@" $goextra -json "$out/${name}_go.json"
	fi
	local r suffix
	for ((r = 1; r <= ${REPEAT:-1}; r++)); do
		suffix=""
		((r > 1)) && suffix="_$r"
		if [[ -n $plugin ]]; then
			GOMLX_BACKEND=xla:$plugin "$bin" "$@" -json "$out/${name}_xla${suffix}.json"
		fi
		if [[ -n ${TORCH_PYTHON:-} ]]; then
			# shellcheck disable=SC2086
			"$TORCH_PYTHON" experiments/bench/reference_peft.py $pyflags --json "$out/${name}_torch${suffix}.json" >/dev/null
		fi
	done
}
run_shape stories260K "--preset stories260K --seq 256 --batch 8" "" -preset stories260K "${small[@]}"
run_shape tiny "--preset tiny --seq 256 --batch 8" "" -preset tiny "${small[@]}"
run_shape 7b-2layers-f32 "--preset 7b --layers 2 --L 2 --seq 128 --batch 1 --steps 5 --warmup 1 --dtype float32" skip \
	-preset 7b -dtype float32 "${big[@]}"
run_shape 7b-2layers-bf16 "--preset 7b --layers 2 --L 2 --seq 128 --batch 1 --steps 5 --warmup 1 --dtype bfloat16" skip \
	-preset 7b -dtype bfloat16 "${big[@]}"
run_shape smollm2 "--preset smollm2 --seq 128 --batch 8 --steps 4 --warmup 1 --eval-batches 4 --gen-prompt 64 --gen-tokens 64" \
	"${go_smollm2[*]}" "${smollm2[@]}"
runc=""
if [[ -n ${LLAMA2C_RUN:-} ]]; then
	assets=${SQA_ASSETS:-../shared/assets}
	runc=$("$LLAMA2C_RUN" "$assets/models/stories260K/stories260K.bin" -z "$assets/models/stories260K/tok512.bin" -t 0 -n 256 2>&1 >/dev/null | sed -n 's/achieved tok\/s: //p')
	echo "{\"run_c_tokens_per_second\": $runc}" >"$out/stories260K_runc.json"
fi
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(shape, engine):
    p = os.path.join(out, f"{shape}_{engine}.json")
    return json.load(open(p)) if os.path.exists(p) else None
print(f"{'shape':<16} {'engine':<9} {'train tok/s':>11} {'vs Go':>6} {'vs torch':>8} {'letter ex/s':>11} {'gen tok/s':>9} {'peak RSS GiB':>12}")
for shape in ("stories260K", "tiny", "7b-2layers-f32", "7b-2layers-bf16", "smollm2"):
    go = load(shape, "go")
    for r in range(1, 10):
        suffix = "" if r == 1 else f"_{r}"
        torch = load(shape, "torch" + suffix)
        rows = [(e, load(shape, e + suffix)) for e in (("go", "xla", "torch") if r == 1 else ("xla", "torch"))]
        if all(x is None for _, x in rows):
            break
        for engine, x in rows:
            if x is None:
                continue
            t = x["train_tokens_per_second"]
            vs_go = f"{t / go['train_tokens_per_second']:.2f}x" if go else ""
            vs_torch = f"{t / torch['train_tokens_per_second']:.2f}x" if torch else ""
            ev = f"{x['eval_examples_per_second']:.1f}" if x.get("eval_examples_per_second") else ""
            gen = f"{x['gen_tokens_per_second']:.1f}" if x.get("gen_tokens_per_second") else ""
            rss = x.get("peak_host_rss_gib")
            rss = f"{rss:.2f}" if rss else ""
            print(f"{shape:<16} {engine + suffix:<9} {t:>11.1f} {vs_go:>6} {vs_torch:>8} {ev:>11} {gen:>9} {rss:>12}")
runc = load("stories260K", "runc")
if runc:
    print(f"{'stories260K':<16} {'run.c':<8} {'':>11} {'':>6} {'':>8} {'':>11} {runc['run_c_tokens_per_second']:>9.0f}")
PY
