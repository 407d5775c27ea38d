#!/usr/bin/env bash
# Prepares what a GPU machine without the compiler needs, here:
#   bench/gpu/bundle.sh [BUILD_DIR]   ->  gpu-bundle/ (git-ignored)
# qwen-run and the two test tools with the shared libraries they need beyond
# glibc / libstdc++, and the CUDA artifacts of the demo, the HF reference
# cases and the benchmark configs. Then one device call runs everything:
#   run(command="bash bench/gpu/device-run.sh", carry=["gpu-bundle"])
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=$root/gpu-bundle
rm -rf "$out" && mkdir -p "$out/bin" "$out/lib" "$out/artifacts"
cp "$build"/bin/{qwen-run,qwen-check-logits,qwen-check-state} "$out/bin/"
ldd "$build/bin/qwen-run" | awk '/libpcre2|libutf8proc/ {print $3}' | xargs -I{} cp -L {} "$out/lib/"
compile() { "$build/bin/qwen-compile" "$1" --target=cuda -o "$out/artifacts/$2.qwenc" "${@:3}" > /dev/null; }
cd "$root"
compile models/checkpoints/qwen3-demo demo
for case in $(awk '{print $1}' bench/gpu/reference-cases.txt); do
  compile "test/data/reference/$case" "$case"
done
# Benchmarks keep the KV cache in bf16, as vLLM and HF's bf16 run do.
for config in qwen3-0.6b qwen3-8b; do
  compile "bench/configs/$config.json" "$config" --kv-dtype=bf16
done
# Qwen3-8B with block-wise FP8 weights (128 x 128 blocks, as Qwen3-8B-FP8:
# the config's quantization_config), seeded random fp8 codes and scales with
# --random-weights; every projection is cuBLASLt's block-scaled FP8 GEMM.
compile bench/configs/qwen3-8b-fp8.json qwen3-8b-fp8 --kv-dtype=bf16
{ git rev-parse HEAD && git diff --quiet HEAD -- . ':!gpu-bundle' || echo "(with uncommitted changes)"; } 2>/dev/null \
  | paste -sd' ' > "$out/commit" || true
du -sh "$out"
