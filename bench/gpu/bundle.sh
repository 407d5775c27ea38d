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
# Qwen3-8B with block-wise FP8 weights (128 x 128 blocks, as Qwen3-8B-FP8),
# where qwen-compile can quantize a checkpoint (--weight-dtype=fp8).
if "$build/bin/qwen-compile" --help 2>&1 | grep -q -- '--weight-dtype'; then
  compile bench/configs/qwen3-8b.json qwen3-8b-fp8 --kv-dtype=bf16 --weight-dtype=fp8
else
  echo "bundle: qwen-compile has no --weight-dtype: no qwen3-8b-fp8 artifact" >&2
fi
{ git rev-parse HEAD && git diff --quiet HEAD -- . ':!gpu-bundle' || echo "(with uncommitted changes)"; } 2>/dev/null \
  | paste -sd' ' > "$out/commit" || true
du -sh "$out"
