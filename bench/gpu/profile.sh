#!/usr/bin/env bash
# Where a decode step's time goes, kernel by kernel (device machine, after
# bench/gpu/bundle.sh here):
#   run(command="bash bench/gpu/profile.sh [MODEL [BATCH [CONTEXT]]]", carry=["gpu-bundle"])
# Nsight Compute times every kernel of a short qwen-run bench (clocks as the
# card has them); kernel_summary.py then keeps the decode steps' kernels and
# prints the time per step by kernel, largest first. Writes OUT/profile-*.csv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=$root/gpu-bundle
out=${OUT:-/tmp/qwen-gpu-out}
model=${1:-qwen3-0.6b}; batch=${2:-1}; context=${3:-512}; steps=4
export PATH=$bundle/bin:$PATH LD_LIBRARY_PATH=$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
mkdir -p "$out"
csv=$out/profile-$model-b$batch-c$context.csv
"$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
  --graph-profiling node \
  qwen-run bench "$bundle/artifacts/$model.qwenc" --random-weights --batch "$batch" \
  --prompt-len "$context" --gen "$steps" --warmup-steps 0 > "$csv" 2> "$out/profile-$model.log"
python3 "$root/bench/gpu/kernel_summary.py" "$csv" --steps "$steps"
