#!/usr/bin/env bash
# Prepares, on the development machine, the folder that gpu.sh runs from on a GPU machine (which has no Go): the
# bench binary and the test binaries of the numeric packages (stripped, in bins.tgz), gpu.sh, the PyTorch reference,
# a copy of ../shared/tools/gpu-env.sh, and the small shared files the goldens read (golden/ and assets/models/).
# The folder must be ignored by git (.device/ is) and is named in the device tool's `carry`:
#   bash experiments/bench/gpu-prepare.sh [DIR=.device/gpu]
#   device: OUT=$OUT bash .device/gpu/gpu.sh 7b
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-.device/gpu}
shared=$(dirname "${SQA_ASSETS:-../shared/assets}")
for f in "$shared/tools/gpu-env.sh" "$shared/golden" "$shared/assets/models"; do
	[[ -e $f ]] || { echo "gpu-prepare: $f is missing" >&2; exit 1; }
done
rm -rf "$dir"
mkdir -p "$dir/shared/assets"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -ldflags="-s -w" -o "$tmp/bench" ./experiments/bench
for p in models/llama adapter clip experiments/generate; do
	go test -c -ldflags="-s -w" -o "$tmp/$(basename "$p").test" "./$p"
done
tar czf "$dir/bins.tgz" -C "$tmp" .
cp experiments/bench/gpu.sh experiments/bench/reference_peft.py "$shared/tools/gpu-env.sh" "$dir/"
cp -r "$shared/golden" "$dir/shared/"
cp -r "$shared/assets/models" "$dir/shared/assets/"
size=$(du -sm "$dir" | cut -f1)
echo "gpu-prepare: $dir holds $size MiB"
((size < 60)) || { echo "gpu-prepare: over the device tool's 64 MiB carry limit" >&2; exit 1; }
