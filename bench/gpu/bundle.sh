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
cp "$build"/bin/{qwen-run,qwen-check-logits,qwen-check-state,qwen-vision-embed} "$out/bin/"
ldd "$build/bin/qwen-run" | awk '/libpcre2|libutf8proc/ {print $3}' | xargs -I{} cp -L {} "$out/lib/"
compile() { "$build/bin/qwen-compile" "$1" --target=cuda -o "$out/artifacts/$2.qwenc" "${@:3}" > /dev/null; }
cd "$root"
compile models/checkpoints/qwen3-demo demo
for case in $(awk '{print $1}' bench/gpu/reference-cases.txt); do
  compile "test/data/reference/$case" "$case"
done
# Tensor-core attention tiles (--gpu-attention=mma, bf16 KV cache) on a Qwen3
# and a Qwen3.5 reference case (device-run.sh: reference-CASE-mma).
for case in bf16_tied_gqa2_theta1e6 qwen35_bf16_mixed; do
  compile "test/data/reference/$case" "$case-mma" --kv-dtype=bf16 --gpu-attention=mma
done
# Benchmarks keep the KV cache in bf16, as vLLM and HF's bf16 run do.
for config in qwen3-0.6b qwen3-8b; do
  compile "bench/configs/$config.json" "$config" --kv-dtype=bf16
  # The same with the prefill attention tiles on tensor cores (AttentionMma.cpp).
  compile "bench/configs/$config.json" "$config-mma" --kv-dtype=bf16 --gpu-attention=mma
done
# The same configs with --gpu-gemv=generated: decode steps of <= 8 rows run
# the generated GEMV instead of cuBLASLt (issue 16), benchmarked beside the
# default; and a bf16 reference case compiled so, checked against HF.
for config in qwen3-0.6b qwen3-8b; do
  compile "bench/configs/$config.json" "$config-gemv" --kv-dtype=bf16 --gpu-gemv=generated
done
compile test/data/reference/bf16_tied_gqa2_theta1e6 bf16_tied_gqa2_theta1e6-gemv --gpu-gemv=generated
# Qwen3-8B with block-wise FP8 weights (128 x 128 blocks, as Qwen3-8B-FP8:
# the config's quantization_config), seeded random fp8 codes and scales with
# --random-weights; every projection is cuBLASLt's block-scaled FP8 GEMM.
compile bench/configs/qwen3-8b-fp8.json qwen3-8b-fp8 --kv-dtype=bf16
# The vision tower (qwen-compile --vision) at two sizes, assumed until the
# released vision_configs are read (qwen-models.md section 10): Qwen3-VL-2B's
# tower for Qwen3.5-0.8B (depth 24, hidden 1024, out 1024, as
# bench/vision_tower_bench.py) and Qwen3-VL-8B's for Qwen3.5-9B (depth 27,
# hidden 1152, intermediate 4304, out 4096). Only config.json, the
# preprocessor config and the tensor shapes travel: bench/gpu/vision_weights.py
# writes random bf16 weights on the device. Needs torch + transformers 5.x.
ref_python=${QWEN_REF_PYTHON:-/work/.venv-ref/bin/python}
vision_bundle() { # NAME vision_shapes.py FLAGS...
  local dir=$out/vision/$1
  "$ref_python" bench/gpu/vision_shapes.py "$dir" "${@:2}"
  "$build/bin/qwen-compile" "$dir/config.json" --vision --target=cuda -o "$out/artifacts/$1.qwenc" > /dev/null
}
vision_bundle vision-0.8b --depth 24 --hidden 1024 --heads 16 --intermediate 4096 --out-hidden 1024
vision_bundle vision-9b --depth 27 --hidden 1152 --heads 16 --intermediate 4304 --out-hidden 4096
{ git rev-parse HEAD && git diff --quiet HEAD -- . ':!gpu-bundle' || echo "(with uncommitted changes)"; } 2>/dev/null \
  | paste -sd' ' > "$out/commit" || true
du -sh "$out"
