#!/usr/bin/env bash
# One prepared GPU check: the PyTorch + peft reference and GoMLX (XLA CUDA) on the same card with the same shapes,
# device memory sampled the same way for both (nvidia-smi every 200 ms, whole process), then the numeric goldens on
# XLA CUDA when their test binaries are present. Prepare the folder with experiments/bench/gpu-prepare.sh, carry it,
# and run on the GPU machine:
#   OUT=... bash DIR/gpu.sh [preset=7b]
# Results in $OUT: gpu.txt, torch_<preset>.json, gomlx_<preset>.json, *_mem.txt, gomlx_<preset>.log (XLA compile
# times and compiled memory statistics), goldens.txt, summary.txt.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-.}
preset=${1:-7b}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
# shellcheck disable=SC1091
source "$here/gpu-env.sh" || exit 1

# sample FILE: start polling used device memory (MiB) into FILE; prints the poller's pid.
sample() {
	nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$1" 2>/dev/null &
	echo $!
}

t0=$SECONDS
pid=$(sample "$out/torch_mem.txt")
PYTHONUNBUFFERED=1 timeout 240 python3 "$here/reference_peft.py" --preset "$preset" --json "$out/torch_$preset.json" 2>&1 | tail -25
kill "$pid" 2>/dev/null
echo "torch: $((SECONDS - t0)) s"

t0=$SECONDS
pid=$(sample "$out/gomlx_mem.txt")
timeout 400 "$here/bench" -preset "$preset" -xla-memstats -eval-batches 4 -gen-prompt 64 -gen-tokens 64 \
	-json "$out/gomlx_$preset.json" 2>"$out/gomlx_$preset.log"
echo "bench exit $?, $((SECONDS - t0)) s"
kill "$pid" 2>/dev/null
grep -E "Compiled in|Memory usage" "$out/gomlx_$preset.log" | cut -c1-260
tail -5 "$out/gomlx_$preset.log"

# Numeric goldens on XLA CUDA (same tolerances as on CPU), from test binaries built by gpu-prepare.sh.
export SQA_ASSETS=$here/shared/assets SQA_GOLDEN=$here/shared/golden
for t in "$here"/*.test; do
	[[ -x $t ]] || continue
	echo "== $(basename "$t")"
	timeout 120 "$t" -test.count=1 -test.run 'Golden|Reference|Greedy|Stories|Adapter|CLIP|Clip|Vision' 2>&1 | tail -15
done | tee "$out/goldens.txt"

python3 - "$out" "$preset" <<'PY' | tee "$out/summary.txt"
import json, os, sys
out, preset = sys.argv[1], sys.argv[2]
def peak(name):
    try:
        vals = [float(v) for v in open(os.path.join(out, name)).read().split() if v.replace(".", "").isdigit()]
        return max(vals) / 1024 if vals else float("nan")
    except OSError:
        return float("nan")
t = json.load(open(os.path.join(out, f"torch_{preset}.json")))
g = json.load(open(os.path.join(out, f"gomlx_{preset}.json")))
r = g["train_tokens_per_second"] / t["train_tokens_per_second"]
print(f"card: {open(os.path.join(out, 'gpu.txt')).read().splitlines()[-1]}")
print(f"train tokens/s: GoMLX {g['train_tokens_per_second']:.0f}, PyTorch {t['train_tokens_per_second']:.0f}: ratio {r:.2f}")
print(f"GoMLX step {g['train_step_seconds']*1e3:.1f} ms, {g.get('train_tflops', 0):.0f} model TFLOP/s "
      f"({100*g.get('fraction_of_peak', 0):.1f}% of bf16 peak), compile {g.get('train_compile_seconds', 0):.1f} s")
print(f"peak device memory, nvidia-smi (whole process): GoMLX {peak('gomlx_mem.txt'):.1f} GiB, PyTorch {peak('torch_mem.txt'):.1f} GiB")
print(f"PyTorch allocator: {t['peak_device_gib']:.1f} GiB allocated, {t['peak_reserved_gib']:.1f} GiB reserved")
print(f"GoMLX letter scoring {g.get('eval_examples_per_second', 0):.1f} examples/s, generation {g.get('gen_tokens_per_second', 0):.1f} tokens/s")
PY
