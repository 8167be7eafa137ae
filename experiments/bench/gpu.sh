#!/usr/bin/env bash
# One prepared GPU check: the PyTorch + peft reference and GoMLX (XLA CUDA) on the same card with the same shapes,
# device memory sampled the same way for both (nvidia-smi's used memory of the card every 200 ms), then the numeric goldens on
# XLA CUDA. Prepare the folder with experiments/bench/gpu-prepare.sh (here), carry it, and run on the GPU machine:
#   OUT=... bash DIR/gpu.sh [preset=7b]
# Results in $OUT: gpu.txt, torch_<preset>.json, gomlx_<preset>.json, *_mem.txt, gomlx_<preset>.log (XLA compile
# times and compiled memory statistics), goldens.txt, summary.txt.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-.}
preset=${1:-7b}
py=${PYTHON:-python3}
mkdir -p "$out"
bin=$(mktemp -d)
tar xzf "$here/bins.tgz" -C "$bin" || exit 1
if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
	nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >"$out/idle_mem.txt"
	# shellcheck disable=SC1091
	source "$here/gpu-env.sh" || exit 1
else
	# A dry run of this script on a CPU machine (e.g. with the tiny preset): the backend is whatever GOMLX_BACKEND says.
	echo "no nvidia-smi: dry run on ${GOMLX_BACKEND:-the default backend}" | tee "$out/gpu.txt"
fi

# sample FILE: start polling used device memory (MiB) into FILE; prints the poller's pid.
sample() {
	command -v nvidia-smi >/dev/null || { echo 0; return; }
	nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$1" 2>/dev/null &
	echo $!
}

t0=$SECONDS
pid=$(sample "$out/torch_mem.txt")
PYTHONUNBUFFERED=1 timeout 240 "$py" "$here/reference_peft.py" --preset "$preset" --json "$out/torch_$preset.json" 2>&1 | tail -25
[[ $pid != 0 ]] && kill "$pid" 2>/dev/null
echo "torch: $((SECONDS - t0)) s"

# GoMLX: training, letter scoring and generation; if the fused-attention run fails, once more with plain ops.
gomlx() { # gomlx NAME [bench flags]: one bench run, its memory samples in NAME_mem.txt and log in NAME.log
	local name=$1 pid rc
	shift
	t0=$SECONDS
	pid=$(sample "$out/${name}_mem.txt")
	timeout 400 "$bin/bench" -preset "$preset" -xla-memstats -eval-batches 4 -gen-prompt 64 -gen-tokens 64 \
		-json "$out/$name.json" "$@" 2>"$out/$name.log"
	rc=$?
	[[ $pid != 0 ]] && kill "$pid" 2>/dev/null
	echo "$name: exit $rc, $((SECONDS - t0)) s"
	grep -E "Compiled in|Memory usage" "$out/$name.log" | cut -c1-260
	((rc == 0)) || grep -vE "Compiled in|Memory usage" "$out/$name.log" | tail -20
	return $rc
}
if ! gomlx "gomlx_$preset"; then
	gomlx "gomlx_${preset}_decomposed" -attention decomposed
fi
# Several GPUs: the same bench data-parallel over all of them, and with the frozen weights split (FSDP-style).
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
if ((ngpu > 1)); then
	gomlx "gomlx_${preset}_dp${ngpu}" -devices all -only train
	gomlx "gomlx_${preset}_fsdp${ngpu}" -devices all -shard-weights -only train
fi

# Numeric goldens on XLA CUDA at the CPU tolerances (TF32 off: go-xla's CUDA default rounds float32 matmuls to
# 10-bit mantissas), from the test binaries, each run in its package folder of this checkout.
export SQA_ASSETS=$here/shared/assets SQA_GOLDEN=$here/shared/golden
root=$(cd "$here/../.." && pwd)
backend=${GOMLX_BACKEND:-}
[[ -n $backend && $backend == *cuda* ]] && backend="$backend,tf32=false"
for pkg in models/llama adapter clip experiments/generate; do
	t=$bin/$(basename "$pkg").test
	echo "== $pkg"
	(cd "$root/$pkg" && GOMLX_BACKEND=$backend timeout 150 "$t" -test.count=1 -test.v 2>&1 |
		grep -E "^(--- |PASS|FAIL|ok|panic)|_test.go:[0-9]+:" | cut -c1-220 | tail -60)
done | tee "$out/goldens.txt"

"$py" - "$out" "$preset" <<'PY' | tee "$out/summary.txt"
import json, os, sys
out, preset = sys.argv[1], sys.argv[2]
def peak(name):
    """Peak of an nvidia-smi sample file, GiB."""
    try:
        vals = [float(v) for v in open(os.path.join(out, name)).read().split() if v.replace(".", "").isdigit()]
        return max(vals) / 1024 if vals else float("nan")
    except OSError:
        return float("nan")
t = json.load(open(os.path.join(out, f"torch_{preset}.json")))
name = f"gomlx_{preset}"
if not os.path.exists(os.path.join(out, name + ".json")):
    name += "_decomposed"  # the fused-attention run failed; see gomlx_<preset>.log
g = json.load(open(os.path.join(out, name + ".json")))
r = g["train_tokens_per_second"] / t["train_tokens_per_second"]
print(f"card: {open(os.path.join(out, 'gpu.txt')).read().splitlines()[-1]}")
print(f"train tokens/s: GoMLX {g['train_tokens_per_second']:.0f}, PyTorch {t['train_tokens_per_second']:.0f}: ratio {r:.2f}")
print(f"GoMLX step {g['train_step_seconds']*1e3:.1f} ms, {g.get('train_tflops', 0):.0f} model TFLOP/s "
      f"({100*g.get('fraction_of_peak', 0):.1f}% of bf16 peak), compile {g.get('train_compile_seconds', 0):.1f} s")
print(f"peak memory used on the card (nvidia-smi): GoMLX {peak(name + '_mem.txt'):.1f} GiB, PyTorch {peak('torch_mem.txt'):.1f} GiB, idle {peak('idle_mem.txt'):.2f} GiB")
print(f"GoMLX attention: {'fused' if g.get('fused_attention') else 'decomposed'}, attention option {g['options'].get('attention')}")
nan = float("nan")
print(f"PyTorch allocator: {t.get('peak_device_gib') or nan:.1f} GiB allocated, {t.get('peak_reserved_gib') or nan:.1f} GiB reserved")
print(f"GoMLX letter scoring {g.get('eval_examples_per_second', 0):.1f} examples/s, generation {g.get('gen_tokens_per_second', 0):.1f} tokens/s")
PY
