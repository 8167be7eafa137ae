#!/usr/bin/env bash
# CPU comparison in one run on this machine: stories260K training (fwd+bwd+AdamW on the adapter), letter-scoring
# evaluation and KV-cache generation, on the pure-Go backend and on XLA's CPU backend (when installed by
# .ci/install-pjrt-cpu.sh), next to llama2.c's run.c generating with the same model when $LLAMA2C_RUN names a
# compiled run.c (gcc -O2 -o run run.c -lm; not part of this repository).
# Results: results/perf/cpu_<backend>.json and a summary table on stdout.
#   bash experiments/bench/cpu.sh [extra bench flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/perf
mkdir -p "$out"
go build -o /tmp/llama-adapter-bench ./experiments/bench
flags=(-preset stories260K -seq 256 -batch 8 -steps 10 -warmup 2 -eval-batches 8 -gen-tokens 255 -gen-prompt 1 "$@")
GOMLX_BACKEND=go:ops_sequential /tmp/llama-adapter-bench "${flags[@]}" -json "$out/cpu_go.json"
if plugin=$(bash .ci/install-pjrt-cpu.sh); then
	GOMLX_BACKEND=xla:$plugin /tmp/llama-adapter-bench "${flags[@]}" -json "$out/cpu_xla.json"
fi
runc=""
if [[ -n ${LLAMA2C_RUN:-} ]]; then
	assets=${SQA_ASSETS:-../shared/assets}
	runc=$("$LLAMA2C_RUN" "$assets/models/stories260K/stories260K.bin" -z "$assets/models/stories260K/tok512.bin" -t 0 -n 256 2>&1 >/dev/null | sed -n 's/achieved tok\/s: //p')
fi
python3 - "$out" "$runc" <<'PY'
import json, os, sys
out, runc = sys.argv[1], sys.argv[2]
rows = []
for name in ("go", "xla"):
    p = os.path.join(out, f"cpu_{name}.json")
    if os.path.exists(p):
        rows.append((name, json.load(open(p))))
base = rows[0][1] if rows else None
print(f"{'backend':<10} {'train tok/s':>12} {'letter ex/s':>12} {'gen tok/s':>10}   (ratio to pure Go)")
for name, r in rows:
    def f(k): return f"{r[k]:.0f} ({r[k]/base[k]:.1f}x)"
    print(f"{name:<10} {f('train_tokens_per_second'):>12} {f('eval_examples_per_second'):>12} {f('gen_tokens_per_second'):>10}")
if runc:
    print(f"{'run.c':<10} {'':>12} {'':>12} {float(runc):>10.0f}")
    json.dump({"run_c_tokens_per_second": float(runc)}, open(os.path.join(out, "cpu_runc.json"), "w"))
PY
