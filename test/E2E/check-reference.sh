#!/usr/bin/env bash
# Compiles one HF reference case, runs its three prompts (prefill at every
# position + 6 greedy decode steps) and compares with the HF logits:
#   check-reference.sh CASE_DIR WORK_DIR f32|half [LOOSE_MAX_ABS LOOSE_MIN_COSINE]
# f32 checkpoints: tight (max |diff| 1e-3, cosine 0.99999, equal tokens).
# bf16/f16 checkpoints: the CPU computes in f32 on the stored weights, so the HF
# f32 run on the same weights is the tight reference; the HF bf16/f16 run (which
# rounds activations) is checked loosely (max |diff| 0.25, cosine 0.999, equal tokens, or the
# given bounds: HF's own bf16 run drifts further from its f32 run on the hybrid models).
# A CUDA artifact rounds the activations to the weight dtype at every GEMM
# input (cuBLASLt takes one dtype), as HF's bf16 run does; a CPU artifact whose
# manifest says `target.gemm_activations: "bf16"` (the default on AVX512-BF16
# CPUs for bf16 weights: the decoder's GEMMs round, the lm_head and router do
# not) likewise; and a bf16 / f16 KV cache (--kv-dtype) rounds keys and
# values: such artifacts are held to the loose bounds against both references.
# QWEN_COMPILE_FLAGS=--bf16-activations=off keeps a CPU artifact's GEMMs in f32
# (the tight bounds).
# Also checks prefill-then-decode against one forward over the same tokens,
# unless QWEN_NO_FULL_FORWARD_CHECK=1: with dynamic NTK RoPE the frequencies
# depend on the length of the forward that computes each row (as in HF), so
# one forward over the prompt and the decoded tokens rotates the prompt's
# keys differently by design. QWEN_FULL_FORWARD_MAX_ABS (default 1e-4)
# bounds that check: tensor-core attention tiles (--gpu-attention=mma) round
# q and p to the cache dtype where decode tokens walk in f32.
# Environment: QWEN_COMPILE_FLAGS (e.g. --target=cuda) is passed to
# qwen-compile; QWEN_ARTIFACT names an artifact compiled elsewhere (a GPU
# machine without the compiler) instead; QWEN_RUN_FLAGS are added to qwen-run.
set -euo pipefail
case_dir=$1; work=$2; mode=$3; loose_abs=${4:-0.25}; loose_cos=${5:-0.999}
ref=$case_dir/reference.safetensors
rm -rf "$work" && mkdir -p "$work"
artifact=${QWEN_ARTIFACT:-$work/model.qwenc}
[ -n "${QWEN_ARTIFACT:-}" ] || qwen-compile "$case_dir" ${QWEN_COMPILE_FLAGS:-} -o "$artifact"
# An artifact compiled elsewhere recorded another path to the checkpoint.
# QWEN_CHECKPOINT: bind another folder than the case's (qwen-compile
# --weight-dtype=fp8 artifacts bind the quantized copy they hold).
run() { qwen-run "$@" --checkpoint "${QWEN_CHECKPOINT:-$case_dir}" ${QWEN_RUN_FLAGS:-}; }
tight_abs=1e-3; tight_cos=0.99999
rounds=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); \
t=m['target']; \
print(int(m['kv_cache']['dtype'] != 'f32' or (t['kind'] == 'cuda' and sys.argv[2] != 'f32') or \
          t.get('gemm_activations', 'f32') != 'f32'))" \
  "$artifact/manifest.json" "$mode")
if [ "$rounds" = 1 ]; then
  tight_abs=$loose_abs; tight_cos=$loose_cos
fi
for k in 0 1 2; do
  ids=$(qwen-check-logits --print-ids "$ref" "p$k.prompt_ids")
  run logits "$artifact" --ids "$ids" --steps 6 -o "$work/p$k.safetensors"
  if [ "$mode" = f32 ]; then
    qwen-check-logits "$work/p$k.safetensors" "$ref" --prefix "p$k." --max-abs "$tight_abs" --min-cosine "$tight_cos"
  else
    qwen-check-logits "$work/p$k.safetensors" "$ref" --prefix "p$k." --suffix _f32 --max-abs "$tight_abs" --min-cosine "$tight_cos"
    qwen-check-logits "$work/p$k.safetensors" "$ref" --prefix "p$k." --max-abs "$loose_abs" --min-cosine "$loose_cos"
  fi
done
[ "${QWEN_NO_FULL_FORWARD_CHECK:-0}" = 1 ] && exit 0
ids=$(qwen-check-logits --print-ids "$work/p2.safetensors" prompt_ids,decode_ids)
run logits "$artifact" --ids "$ids" -o "$work/full.safetensors"
qwen-check-logits --consistency "$work/p2.safetensors" "$work/full.safetensors" \
  --max-abs "${QWEN_FULL_FORWARD_MAX_ABS:-1e-4}"
