#!/usr/bin/env bash
# The FP8 case whose projections all fit cuBLASLt's block-scaled FP8 GEMM
# (test/CUDA/gen_fp8_actquant_case.py), on the fake device:
#   check-fp8-actquant.sh CASE_DIR WORK_DIR MAX_ABS MIN_COSINE [REF_PREFIX]
# compiles it for CUDA, prints how many GEMMs of the manifest are FP8
# cuBLASLt calls and how many of them have a decode variant, runs the three
# prompts (logits at every prompt position and 6 greedy decode steps, with
# QWEN_RUN_FLAGS) and compares with the case's reference under REF_PREFIX:
# "" for HF on the dequantized weights with HF's activation quantization in
# front of each projection, as the pack kernel quantizes; "plain_decode."
# for the same without it on one-token steps, as the decode variant computes
# (equal greedy tokens).
set -euo pipefail
case_dir=$1; work=$2; max_abs=$3; min_cos=$4; prefix=${5:-}
ref=$case_dir/reference.safetensors
rm -rf "$work" && mkdir -p "$work"
qwen-compile "$case_dir" ${QWEN_COMPILE_FLAGS:-} -o "$work/model.qwenc"
echo "fp8 gemms: $(grep -o '"a_dtype": *"f8e4m3"' "$work/model.qwenc/manifest.json" | wc -l)"
echo "fp8 decode variants: $(grep -o '"kernel": *"[a-z0-9_]*_matmul_decode"' "$work/model.qwenc/manifest.json" | wc -l)"
for k in 0 1 2; do
  ids=$(qwen-check-logits --print-ids "$ref" "${prefix}p$k.prompt_ids")
  qwen-run logits "$work/model.qwenc" --ids "$ids" --steps 6 --checkpoint "$case_dir" ${QWEN_RUN_FLAGS:-} \
    -o "$work/p$k.safetensors"
  qwen-check-logits "$work/p$k.safetensors" "$ref" --prefix "${prefix}p$k." --max-abs "$max_abs" --min-cosine "$min_cos"
done
