#!/usr/bin/env bash
# One prepared GPU check: GoMLX (XLA CUDA) and the PyTorch + peft reference on the same card, same shapes.
# Run from a folder holding the `bench` binary (go build -o DIR/bench ./experiments/bench), gpu-env.sh (a copy of
# ../shared/tools/gpu-env.sh) and reference_peft.py; results go to ${OUT:-.}.
#   bash gpu.sh [preset=7b]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-.}
preset=${1:-7b}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
# shellcheck disable=SC1091
source "$here/gpu-env.sh" || exit 1
PYTHONUNBUFFERED=1 timeout 300 python3 "$here/reference_peft.py" --preset "$preset" --json "$out/torch_$preset.json" 2>&1 | tail -20
timeout 400 "$here/bench" -preset "$preset" -only train -json "$out/gomlx_$preset.json" 2>&1 | tail -20
python3 - "$out/gomlx_$preset.json" "$out/torch_$preset.json" <<'PY'
import json, sys
g, t = (json.load(open(p)) for p in sys.argv[1:3])
r = g["train_tokens_per_second"] / t["train_tokens_per_second"]
print(f"GoMLX {g['train_tokens_per_second']:.0f} tok/s, PyTorch {t['train_tokens_per_second']:.0f} tok/s: ratio {r:.2f}")
print(f"peak memory: GoMLX {g.get('peak_device_gib', 0):.1f} GiB (nvidia-smi, whole process), PyTorch {t['peak_device_gib']:.1f} GiB (allocated)")
PY
