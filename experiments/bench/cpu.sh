#!/usr/bin/env bash
# CPU comparison in one run on this machine, for each shape: adapter training (fwd+bwd+AdamW), letter-scoring
# evaluation and KV-cache generation on the pure-Go backend and on XLA's CPU backend (when installed by
# .ci/install-pjrt-cpu.sh); the PyTorch + peft reference's training step with the same shapes when $TORCH_PYTHON
# names a python3 with torch, transformers and peft; llama2.c's run.c generating with the real stories260K when
# $LLAMA2C_RUN names a compiled run.c (gcc -O2 -o run run.c -lm; not part of this repository).
# Shapes: stories260K and tiny (B=8 × 256 tokens, K=10, all layers adapted), and two LLaMA-7B layers (B=1 × 128,
# K=10, L=2) in float32 and bfloat16, training only.
# Results: results/perf/<shape>_<engine>.json and a summary table on stdout (ratios against pure Go and PyTorch).
#   [TORCH_PYTHON=python3] [LLAMA2C_RUN=./run] bash experiments/bench/cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/perf
mkdir -p "$out"
bin=$(mktemp -d)/bench
go build -o "$bin" ./experiments/bench
plugin=$(bash .ci/install-pjrt-cpu.sh) || plugin=""
small=(-seq 256 -batch 8 -steps 10 -warmup 2 -eval-batches 8 -gen-tokens 255 -gen-prompt 1)
big=(-layers 2 -L 2 -seq 128 -batch 1 -steps 5 -warmup 1 -only train)
# shape name, bench flags (the reference gets the matching ones)
run_shape() {
	local name=$1 pyflags=$2
	shift 2
	if [[ $name != 7b* ]]; then # the pure-Go backend is too slow for 7B layers
		GOMLX_BACKEND=go:ops_sequential "$bin" "$@" -json "$out/${name}_go.json"
	fi
	if [[ -n $plugin ]]; then
		GOMLX_BACKEND=xla:$plugin "$bin" "$@" -json "$out/${name}_xla.json"
	fi
	if [[ -n ${TORCH_PYTHON:-} ]]; then
		# shellcheck disable=SC2086
		"$TORCH_PYTHON" experiments/bench/reference_peft.py $pyflags --json "$out/${name}_torch.json" >/dev/null
	fi
}
run_shape stories260K "--preset stories260K --seq 256 --batch 8" -preset stories260K "${small[@]}"
run_shape tiny "--preset tiny --seq 256 --batch 8" -preset tiny "${small[@]}"
run_shape 7b-2layers-f32 "--preset 7b --layers 2 --L 2 --seq 128 --batch 1 --steps 5 --warmup 1 --dtype float32" \
	-preset 7b -dtype float32 "${big[@]}"
run_shape 7b-2layers-bf16 "--preset 7b --layers 2 --L 2 --seq 128 --batch 1 --steps 5 --warmup 1 --dtype bfloat16" \
	-preset 7b -dtype bfloat16 "${big[@]}"
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
print(f"{'shape':<16} {'engine':<8} {'train tok/s':>11} {'vs Go':>6} {'vs torch':>8} {'letter ex/s':>11} {'gen tok/s':>9}")
for shape in ("stories260K", "tiny", "7b-2layers-f32", "7b-2layers-bf16"):
    go, torch = load(shape, "go"), load(shape, "torch")
    for engine in ("go", "xla", "torch"):
        r = load(shape, engine)
        if r is None:
            continue
        t = r["train_tokens_per_second"]
        vs_go = f"{t / go['train_tokens_per_second']:.2f}x" if go else ""
        vs_torch = f"{t / torch['train_tokens_per_second']:.2f}x" if torch else ""
        ev = f"{r['eval_examples_per_second']:.0f}" if r.get("eval_examples_per_second") else ""
        gen = f"{r['gen_tokens_per_second']:.0f}" if r.get("gen_tokens_per_second") else ""
        print(f"{shape:<16} {engine:<8} {t:>11.0f} {vs_go:>6} {vs_torch:>8} {ev:>11} {gen:>9}")
runc = load("stories260K", "runc")
if runc:
    print(f"{'stories260K':<16} {'run.c':<8} {'':>11} {'':>6} {'':>8} {'':>11} {runc['run_c_tokens_per_second']:>9.0f}")
PY
