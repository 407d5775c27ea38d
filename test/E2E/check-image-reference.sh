#!/usr/bin/env bash
# Compiles one image-LM reference case (scripts/gen_image_lm_reference.py)
# and runs its prompts with the images' embeddings given through
# `qwen-run logits --image-embeds` (the vision tower is not run): logits at
# every prompt position and over 6 greedy decode steps against HF's language
# model fed the same rows at the <|image_pad|> positions, with HF's MRoPE
# positions (f32: max |diff| 1e-3, cosine 0.99999, equal tokens). Each prompt
# runs twice: as one step, and in steps of 5 tokens (which split the
# images' pad runs).
#   check-image-reference.sh CASE_DIR WORK_DIR
# QWEN_COMPILE_FLAGS (e.g. --target=cuda, set by test/CUDA/fake-gpu.sh) is
# passed to qwen-compile.
set -euo pipefail
case_dir=$1; work=$2
ref=$case_dir/reference.safetensors
rm -rf "$work" && mkdir -p "$work"
artifact=$work/model.qwenc
qwen-compile "$case_dir" ${QWEN_COMPILE_FLAGS:-} -o "$artifact"
run() { qwen-run "$@" --checkpoint "$case_dir"; }
for k in 0 1; do
  ids=$(qwen-check-logits --print-ids "$ref" "p$k.ids")
  for steps in whole 5; do
    extra=()
    [ "$steps" = whole ] || extra=(--max-batch-tokens "$steps")
    run logits "$artifact" --ids "$ids" --image-embeds "$case_dir/p$k.images.safetensors" --steps 6 \
      "${extra[@]}" -o "$work/p$k.$steps.safetensors"
    qwen-check-logits "$work/p$k.$steps.safetensors" "$ref" --prefix "p$k." --max-abs 1e-3 --min-cosine 0.99999
  done
done
