#!/usr/bin/env python3
"""Generate the HuggingFace-transformers reference data used by the tests.

Developer tool only: it needs torch + transformers (see
scripts/requirements-reference.txt) and is never run at build/test time or in
CI.  Its outputs are committed:

  test/data/reference/<case>/   tiny random Qwen3 (dense and MoE) checkpoints
                                + reference logits; and (HYBRID_CASES) tiny
                                Qwen3.5, Qwen3-Next and Qwen3.5-MoE hybrid
                                Gated-DeltaNet checkpoints, same format
  test/data/demo/expected.json  greedy output of the bundled demo checkpoint

Usage:
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install -r scripts/requirements-reference.txt
  .venv-ref/bin/python scripts/gen_reference.py            # everything
  .venv-ref/bin/python scripts/gen_reference.py cases      # only the tiny cases
  .venv-ref/bin/python scripts/gen_reference.py demo       # only expected.json
  .venv-ref/bin/python scripts/gen_reference.py cases --only f16_untied_bias
  .venv-ref/bin/python scripts/gen_reference.py cases --only a,b  # several
  .venv-ref/bin/python scripts/gen_reference.py cases --hybrid    # HYBRID_CASES

Everything is seeded and computed on CPU with the eager attention (and, for
Qwen3-MoE, eager experts) implementation, so re-running with the same
torch/transformers versions reproduces the files bit for bit (modulo the
versions recorded in meta.json).  See test/data/reference/README.md for the
format.  The Qwen3-MoE cases (MOE_CASES) store experts per-expert on disk, as
the released checkpoints do, and add p1.router_topk_ids; their prompts are
also filtered so that every routing decision has a clear top-k boundary.
The hybrid cases (HYBRID_CASES) use prompts of 1, 17 and 70 tokens (HF's
torch GDN prefill is chunked by 64), check that the prompt forward takes HF's
chunked delta rule and every decode step the recurrent one with the cached
state, and bring model.safetensors to the released layouts (fused Qwen3.5-MoE
experts, F32 A_log / linear-attention norm in bf16 files, mtp.* tensors).
"""

import argparse
import json
import os
import re
import shutil
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (AutoTokenizer, GenerationConfig, Qwen3Config,
                          Qwen3ForCausalLM, Qwen3MoeConfig,
                          Qwen3MoeForCausalLM)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF_DIR = os.path.join(ROOT, "test", "data", "reference")
DEMO_CKPT = os.path.join(ROOT, "models", "checkpoints", "qwen3-demo")
DEMO_OUT = os.path.join(ROOT, "test", "data", "demo", "expected.json")

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}

PROMPT_LENS = (1, 9, 23)  # prompts p0, p1, p2
N_DECODE = 6              # KV-cache decode steps recorded with logits
N_GREEDY = 12             # model.generate(max_new_tokens=...)

# rope_style: "native" = whatever this transformers version writes
# (v5: a "rope_parameters" object); "legacy" = config.json rewritten to the
# pre-v5 top-level "rope_theta" (+ "rope_scaling": null) form.
CASES = [
    dict(name="f32_tied_gqa2_hd16", dtype="f32", seed=1001, vocab_size=384,
         hidden_size=48, intermediate_size=96, num_hidden_layers=2,
         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
         tie_word_embeddings=True, attention_bias=False, rope_theta=10000.0,
         rope_style="native", max_position_embeddings=128, rms_norm_eps=1e-6,
         note="tied embeddings, GQA 2, head_dim 16 != hidden/heads = 12"),
    dict(name="f32_untied_mha_legacyrope", dtype="f32", seed=1002,
         vocab_size=512, hidden_size=64, intermediate_size=128,
         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
         head_dim=16, tie_word_embeddings=False, attention_bias=False,
         rope_theta=50000.0, rope_style="legacy", max_position_embeddings=256,
         rms_norm_eps=1e-6,
         note="untied, GQA 1 (nH == nKV), 3 layers, old top-level rope_theta "
              "key style"),
    dict(name="bf16_untied_gqa4", dtype="bf16", seed=1003, vocab_size=640,
         hidden_size=64, intermediate_size=160, num_hidden_layers=2,
         num_attention_heads=8, num_key_value_heads=2, head_dim=16,
         tie_word_embeddings=False, attention_bias=False, rope_theta=10000.0,
         rope_style="native", max_position_embeddings=128, rms_norm_eps=1e-6,
         note="bf16, untied, GQA 4 (8 heads, 2 kv heads), q_proj 64 -> 128"),
    dict(name="bf16_tied_gqa2_theta1e6", dtype="bf16", seed=1004,
         vocab_size=768, hidden_size=96, intermediate_size=192,
         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
         head_dim=32, tie_word_embeddings=True, attention_bias=False,
         rope_theta=1000000.0, rope_style="native",
         max_position_embeddings=256, rms_norm_eps=1e-6,
         note="bf16, tied, GQA 2, rope_theta 1e6 (like real Qwen3), "
              "head_dim 32 != hidden/heads = 24"),
    dict(name="f16_untied_bias", dtype="f16", seed=1005, vocab_size=512,
         hidden_size=64, intermediate_size=128, num_hidden_layers=2,
         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
         tie_word_embeddings=False, attention_bias=True, rope_theta=10000.0,
         rope_style="native", max_position_embeddings=128, rms_norm_eps=1e-6,
         note="f16, untied, attention_bias true: q/k/v/o projections have "
              "(random, non-zero) biases"),
    dict(name="f32_untied_hd64_inter88", dtype="f32", seed=1006,
         vocab_size=1000, hidden_size=64, intermediate_size=88,
         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
         head_dim=64, tie_word_embeddings=False, attention_bias=False,
         rope_theta=10000.0, rope_style="native",
         max_position_embeddings=128, rms_norm_eps=1e-5,
         note="head_dim 64 (q_proj 64 -> 128), intermediate 88 (not a "
              "multiple of 16), vocab 1000, rms_norm_eps 1e-5"),
]

# Qwen3-MoE cases (arch "qwen3_moe"; Qwen3MoeConfig / Qwen3MoeForCausalLM).
# Same format as above plus p1.router_topk_ids.  Every key of the dense cases
# applies; intermediate_size is the width of the dense-MLP layers (layer i is
# MoE iff i not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0).
# config_style: "native" = config.json as transformers 5 writes it (experts
# count under "num_local_experts", rope in "rope_parameters", "dtype");
# "hub" = rewritten to the form of the released Qwen3-MoE checkpoints
# (transformers 4.x): "num_experts", top-level "rope_theta" +
# "rope_scaling": null, "torch_dtype".
MOE_CASES = [
    dict(name="moe_f32_renorm", arch="qwen3_moe", dtype="f32", seed=2001,
         vocab_size=384, hidden_size=48, intermediate_size=96,
         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
         head_dim=16, tie_word_embeddings=False, attention_bias=False,
         rope_theta=10000.0, rope_style="native", config_style="native",
         max_position_embeddings=128, rms_norm_eps=1e-6,
         num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32,
         norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
         note="MoE in every layer, 8 experts top-2, norm_topk_prob true "
              "(like the released Qwen3-MoE), untied, head_dim 16 != 48/4"),
    dict(name="moe_f32_norenorm_sparse2", arch="qwen3_moe", dtype="f32",
         seed=2002, vocab_size=448, hidden_size=64, intermediate_size=96,
         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
         head_dim=16, tie_word_embeddings=False, attention_bias=False,
         rope_theta=10000.0, rope_style="native", config_style="native",
         max_position_embeddings=128, rms_norm_eps=1e-6,
         num_experts=6, num_experts_per_tok=3, moe_intermediate_size=40,
         norm_topk_prob=False, decoder_sparse_step=2, mlp_only_layers=[2],
         note="norm_topk_prob false (raw softmax weights), decoder_sparse_step "
              "2 + mlp_only_layers [2]: layer 0 dense, layer 1 MoE, layer 2 "
              "dense (intermediate_size 96); 6 experts top-3, "
              "moe_intermediate_size 40"),
    dict(name="moe_bf16_renorm", arch="qwen3_moe", dtype="bf16", seed=2003,
         vocab_size=512, hidden_size=64, intermediate_size=128,
         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
         head_dim=16, tie_word_embeddings=True, attention_bias=False,
         rope_theta=1000000.0, rope_style="legacy", config_style="hub",
         max_position_embeddings=256, rms_norm_eps=1e-6,
         num_experts=16, num_experts_per_tok=4, moe_intermediate_size=32,
         norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
         note="bf16, 16 experts top-4, norm_topk_prob true, tied, rope_theta "
              "1e6; config.json in the released-checkpoint (transformers "
              "4.x) style: num_experts, top-level rope_theta, torch_dtype"),
]
CASES = CASES + MOE_CASES

# RoPE-scaling cases (Qwen3 dense, f32): every rope type transformers
# implements, with a small original context (16) so that the prompts of
# ROPE_PROMPT_LENS stay inside it (p0), cross it during the decode steps (p1:
# positions 13..18) and start beyond it (p2).  "rope_scaling" holds the
# type's parameters; rope_style "native" writes them into rope_parameters,
# "legacy" into the pre-v5 top-level "rope_theta" + "rope_scaling" keys (the
# form of the Qwen3 model cards).  For dynamic the context is
# max_position_embeddings itself (16), for the others max_position_embeddings
# is 64, the extended context.
ROPE_PROMPT_LENS = (5, 13, 40)
_ROPE = dict(dtype="f32", vocab_size=320, hidden_size=64, intermediate_size=96,
             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=32, tie_word_embeddings=False, attention_bias=False,
             rope_theta=10000.0, max_position_embeddings=64, rms_norm_eps=1e-6,
             prompt_lens=ROPE_PROMPT_LENS)
ROPE_CASES = [dict(_ROPE, **c) for c in [
    dict(name="rope_linear", seed=1101, rope_style="native",
         rope_scaling=dict(rope_type="linear", factor=2.0),
         note="linear RoPE scaling, factor 2"),
    dict(name="rope_dynamic", seed=1102, rope_style="native",
         max_position_embeddings=16,
         rope_scaling=dict(rope_type="dynamic", factor=4.0),
         note="dynamic NTK scaling, factor 4 over max_position_embeddings 16: "
              "the base grows with the sequence length of each forward"),
    dict(name="rope_yarn", seed=1103, rope_style="legacy",
         rope_scaling=dict(rope_type="yarn", factor=4.0,
                           original_max_position_embeddings=16),
         note="YaRN as the Qwen3 model cards configure it (legacy "
              "rope_scaling key): factor 4, original context 16, default "
              "beta_fast/beta_slow, attention factor 0.1 ln(4) + 1"),
    dict(name="rope_llama3", seed=1104, rope_style="native",
         rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0,
                           high_freq_factor=4.0,
                           original_max_position_embeddings=16),
         note="llama3 scaling: factor 4, low/high frequency factors 1/4, "
              "original context 16"),
    dict(name="rope_longrope", seed=1105, rope_style="native",
         rope_scaling=dict(rope_type="longrope",
                           short_factor=[1.0 + 0.05 * i for i in range(16)],
                           long_factor=[1.0 + 0.75 * i for i in range(16)],
                           original_max_position_embeddings=16),
         note="longrope: short factors up to the original context 16, long "
              "ones beyond it (chosen per forward by its length); factor = "
              "64 / 16, attention factor sqrt(1 + ln 4 / ln 16)"),
]]
CASES = CASES + ROPE_CASES

# FP8 block-wise case: a Qwen3 whose linear weights are quantized as Qwen's
# FP8 releases are (float8_e4m3fn, one f32 weight_scale_inv per block, block
# amax / 448), with blocks of 32 x 48 so the tiny matrices hold several blocks
# and partial ones (64 columns = 48 + 16).  The f32 model carries the
# dequantized weights, so the references are HF f32 on exactly what the file
# decodes to.  config.json gets quantization_config; embeddings, norms and
# lm_head stay f32 (HF's FP8 quantizes nn.Linear layers except lm_head).
FP8_CASES = [dict(_ROPE, name="fp8_block_f32", seed=1301, rope_style="native",
                  prompt_lens=PROMPT_LENS, fp8_block=(32, 48),
                  note="FP8 block-wise weights (32 x 48 blocks), f32 elsewhere"),
             # Blocks of 64 x 64 over hidden 96 / intermediate 160: every
             # reduction ends in a ragged 32-column block, q|k|v (128, 64,
             # 64 rows) stack whole blocks while gate|up (160 rows) cannot.
             dict(_ROPE, name="fp8_block_ragged_f32", seed=1302, rope_style="native",
                  hidden_size=96, intermediate_size=160,
                  prompt_lens=PROMPT_LENS, fp8_block=(64, 64),
                  note="FP8 block-wise weights (64 x 64 blocks, ragged in every "
                       "reduction), f32 elsewhere")]
# `qwen-compile --weight-dtype=fp8` case: an f32 checkpoint with 128 x 128
# divisible linears (k/v, 64 rows, are not: HF's quantizer leaves those as
# they are). The file keeps the f32 source weights; the references are HF f32
# on what transformers' own FineGrainedFP8 quantizer (Fp8Quantize) makes of
# them, dequantized, and hf_fp8.safetensors holds that quantizer's output
# (fp8 weights and weight_scale_inv) for a byte-exact comparison.
FP8_CASES.append(dict(_ROPE, name="fp8_quantize_f32", seed=1303, rope_style="native",
                      hidden_size=128, intermediate_size=256, num_hidden_layers=1,
                      prompt_lens=PROMPT_LENS, hf_fp8_quantize=(128, 128),
                      note="f32 source for qwen-compile --weight-dtype=fp8; references "
                           "on HF's FineGrainedFP8 quantization of it"))
CASES = CASES + FP8_CASES
FP8_MAX = 448.0


def hf_fp8_quantize(name, w, block):
    """transformers' own FineGrainedFP8 quantizer (Fp8Quantize._quantize_one)
    on one weight: {} if it leaves the weight as it is, else (fp8, scale_inv)."""
    import types
    from transformers.integrations.finegrained_fp8 import Fp8Quantize
    qc = types.SimpleNamespace(weight_block_size=list(block), scale_fmt=None)
    out = Fp8Quantize(types.SimpleNamespace(quantization_config=qc))._quantize_one(name, w)
    scale_key = name.rsplit(".", 1)[0] + ".weight_scale_inv"
    if scale_key not in out:
        return None
    return out[name], out[scale_key]


@torch.no_grad()
def hf_fp8_quantize_model(model, block):
    """Replaces every decoder linear weight HF's quantizer converts by its
    dequantization; returns {name: (fp8, scale_inv, original f32)}."""
    stored = {}
    for name, p in model.named_parameters():
        if ".layers." in name and name.endswith(".weight") and p.dim() == 2:
            got = hf_fp8_quantize(name, p.data.float(), block)
            if got is None:
                continue
            q, scale = got
            original = p.data.float().clone()
            p.copy_(fp8_dequantize_blocks(q, scale, block))
            stored[name] = (q, scale, original)
    return stored


def write_hf_fp8_case(case_dir, stored):
    """Puts the source weights back into the case's file and writes what HF's
    quantizer made of them to hf_fp8.safetensors."""
    path = os.path.join(case_dir, "model.safetensors")
    st = load_file(path)
    expected = {}
    for name, (q, scale, original) in stored.items():
        st[name] = original.contiguous()
        expected[name] = q.contiguous()
        expected[name.rsplit(".", 1)[0] + ".weight_scale_inv"] = scale.contiguous()
    save_file(st, path, metadata={"format": "pt"})
    save_file(expected, os.path.join(case_dir, "hf_fp8.safetensors"), metadata={"format": "pt"})


def fp8_quantize_blocks(w, block):
    """(fp8 weight, f32 scale_inv) of a 2-D f32 weight, per block."""
    bn, bk = block
    n, k = w.shape
    sn, sk = -(-n // bn), -(-k // bk)
    scale = torch.empty(sn, sk, dtype=torch.float32)
    q = torch.empty(n, k, dtype=torch.float8_e4m3fn)
    for i in range(sn):
        for j in range(sk):
            blk = w[i * bn:(i + 1) * bn, j * bk:(j + 1) * bk]
            s = blk.abs().max().clamp(min=1e-12) / FP8_MAX
            scale[i, j] = s
            q[i * bn:(i + 1) * bn, j * bk:(j + 1) * bk] = (blk / s).to(torch.float8_e4m3fn)
    return q, scale


def fp8_dequantize_blocks(q, scale, block):
    bn, bk = block
    s = scale.repeat_interleave(bn, 0)[:q.shape[0]].repeat_interleave(bk, 1)[:, :q.shape[1]]
    return q.to(torch.float32) * s


@torch.no_grad()
def fp8_quantize_model(model, block):
    """Replaces every decoder linear weight by its FP8 dequantization and
    returns {name: (fp8, scale_inv)} for the file."""
    stored = {}
    for name, p in model.named_parameters():
        if ".layers." in name and name.endswith("proj.weight"):
            q, scale = fp8_quantize_blocks(p.data.float(), block)
            p.copy_(fp8_dequantize_blocks(q, scale, block))
            stored[name] = (q, scale)
    return stored


def write_fp8_checkpoint(case_dir, stored, block):
    path = os.path.join(case_dir, "model.safetensors")
    st = load_file(path)
    for name, (q, scale) in stored.items():
        assert torch.equal(fp8_dequantize_blocks(q, scale, block), st[name]), name
        st[name] = q.contiguous()
        st[name + "_scale_inv"] = scale.contiguous()
    save_file(st, path, metadata={"format": "pt"})
    cpath = os.path.join(case_dir, "config.json")
    with open(cpath) as f:
        d = json.load(f)
    d["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3",
                                "activation_scheme": "dynamic",
                                "weight_block_size": list(block),
                                "modules_to_not_convert": ["lm_head"]}
    with open(cpath, "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)
        f.write("\n")

INITIALIZER_RANGE = 0.15
# Router (mlp.gate.weight) std: bigger than INITIALIZER_RANGE, so router
# logits have std ~1.7-2 (H = 48-64): top-k choices differ from token to
# token and, in probability, are clearest around there (larger logits make
# the k-th and (k+1)-th probabilities tiny).
ROUTER_STD = 0.25
# Every routing decision on the recorded paths (prompt tokens and the fed
# decode tokens, every MoE layer; native run and, for bf16/f16, the f32 run,
# which must also choose the same experts) must have softmax
# prob[k-1] - prob[k] >= this (probs sorted descending).  Random Gaussian
# routers give a near-tie in ~1-5% of decisions, so this is part of the
# prompt acceptance (prompts are redrawn, counted in meta.json); only if no
# prompt of MAX_PROMPT_TRIES passes is the case's seed redrawn
# (seed + SEED_REDRAW_STEP, listed in meta.json).
ROUTER_MIN_GAP = 1e-3
# MoE prompts must also give greedy_ids with at least this many distinct
# tokens (some random MoE checkpoints have an attractor token, and the router
# test prefers such paths: a repeated token routes the same way every step).
MOE_MIN_DISTINCT_GREEDY = 3
MOE_MAX_PROMPT_TRIES = 20000  # ~1/500 of the 23-token bf16 prompts pass
SEED_REDRAW_STEP = 100
MAX_SEED_TRIES = 20
# HF's default experts implementation in 5.x is "grouped_mm" (the stacked
# experts through torch grouped_mm, top-k summed at once); "eager" is the
# per-expert loop in modeling_qwen3_moe.py (index_add_ in expert-id order).
# The references use "eager"; meta.json records the difference to grouped_mm.
MOE_EXPERTS_IMPL = "eager"
NORM_STD = 0.1   # every RMSNorm weight = 1 + NORM_STD * randn
BIAS_STD = 0.1   # attention biases (when attention_bias) = BIAS_STD * randn
# Minimum top-2 logit gap of every greedy decision on the recorded path.
MIN_MARGIN = {"f32": 0.02, "f16": 0.02, "bf16": 0.0625}
MAX_PROMPT_TRIES = 2000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_config(c):
    kw = dict(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
        hidden_act="silu", max_position_embeddings=c["max_position_embeddings"],
        rms_norm_eps=c["rms_norm_eps"],
        tie_word_embeddings=c["tie_word_embeddings"],
        attention_bias=c["attention_bias"], attention_dropout=0.0,
        use_sliding_window=False, initializer_range=INITIALIZER_RANGE,
        use_cache=True, bos_token_id=None, eos_token_id=None,
        pad_token_id=None,
    )
    # transformers >= 5 takes rope_parameters; 4.x takes rope_theta.  Passing
    # rope_theta works on both (v5 folds it into rope_parameters).
    kw["rope_theta"] = c["rope_theta"]
    if "rope_scaling" in c:
        kw["rope_parameters"] = dict(c["rope_scaling"], rope_theta=c["rope_theta"])
        del kw["rope_theta"]
    if is_moe(c):
        # Qwen3MoeConfig has no max_window_layers; head_dim is not a declared
        # field either but is stored and used (getattr(config, "head_dim")).
        kw.update(num_experts=c["num_experts"],
                  num_experts_per_tok=c["num_experts_per_tok"],
                  moe_intermediate_size=c["moe_intermediate_size"],
                  norm_topk_prob=c["norm_topk_prob"],
                  decoder_sparse_step=c["decoder_sparse_step"],
                  mlp_only_layers=list(c["mlp_only_layers"]),
                  output_router_logits=False)
        cfg = Qwen3MoeConfig(**kw)
        cfg.architectures = ["Qwen3MoeForCausalLM"]
        assert cfg.head_dim == c["head_dim"]
        return cfg
    cfg = Qwen3Config(**kw)
    cfg.architectures = ["Qwen3ForCausalLM"]
    return cfg


def is_moe(c):
    return c.get("arch", "qwen3") == "qwen3_moe"


def model_class(c):
    return Qwen3MoeForCausalLM if is_moe(c) else Qwen3ForCausalLM


def moe_layers(c):
    """Indices of the MoE layers (HF Qwen3MoeDecoderLayer's rule)."""
    return [i for i in range(c["num_hidden_layers"])
            if i not in c["mlp_only_layers"] and c["num_experts"] > 0
            and (i + 1) % c["decoder_sparse_step"] == 0]


def config_rope_theta(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(cfg.rope_theta)


@torch.no_grad()
def build_model(c, seed):
    cfg = make_config(c)
    torch.manual_seed(seed)
    kw = dict(attn_implementation="eager")
    if is_moe(c):
        kw["experts_implementation"] = MOE_EXPERTS_IMPL
    model = model_class(c)._from_config(cfg, **kw)
    g = torch.Generator().manual_seed(seed + 7)
    std = INITIALIZER_RANGE
    # Re-draw every parameter explicitly from our own generator, so the
    # weights do not depend on how a transformers version initialises.
    # MoE experts are drawn in transformers 5's in-memory stacked layout
    # (mlp.experts.gate_up_proj [E, 2I, H], mlp.experts.down_proj [E, H, I]).
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):  # input/post_attention/q/k/final norm
            p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g))
        elif name.endswith(".bias"):
            p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
        elif name.endswith("mlp.gate.weight"):  # MoE router [E, H]
            p.copy_(ROUTER_STD * torch.randn(p.shape, generator=g))
        else:
            p.copy_(std * torch.randn(p.shape, generator=g))
    assert abs(config_rope_theta(cfg) - c["rope_theta"]) < 1e-6 * c["rope_theta"]
    return model.to(DTYPES[c["dtype"]]).eval()


def load(case_dir, dtype, c=None, experts_impl=None):
    kw = dict(dtype=dtype, attn_implementation="eager")
    if c is not None and is_moe(c):
        # experts_impl None: HF's default (grouped_mm in transformers 5)
        if experts_impl is not None:
            kw["experts_implementation"] = experts_impl
        m = Qwen3MoeForCausalLM.from_pretrained(case_dir, **kw)
        if experts_impl is not None:
            assert m.config._experts_implementation == experts_impl
        return m.eval()
    m = Qwen3ForCausalLM.from_pretrained(case_dir, **kw)
    return m.eval()


# ----------------------------------------------------------------------------
# MoE helpers

def fused_to_per_expert(state_dict, c):
    """transformers-5 in-memory stacked experts -> per-expert tensors, as the
    released Qwen3-MoE checkpoints store them.  gate_up_proj [E, 2I, H]: rows
    [0, I) are gate_proj, rows [I, 2I) up_proj; down_proj [E, H, I]."""
    out, I = {}, c["moe_intermediate_size"]
    for k, v in state_dict.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            pre = k[:-len("gate_up_proj")]
            assert v.shape[1] == 2 * I, (k, v.shape)
            for e in range(v.shape[0]):
                out[f"{pre}{e}.gate_proj.weight"] = v[e, :I].contiguous()
                out[f"{pre}{e}.up_proj.weight"] = v[e, I:].contiguous()
        elif k.endswith("mlp.experts.down_proj"):
            pre = k[:-len("down_proj")]
            for e in range(v.shape[0]):
                out[f"{pre}{e}.down_proj.weight"] = v[e].contiguous()
        else:
            out[k] = v
    return out


def expert_layout(st):
    fused = any(k.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj"))
                for k in st)
    per = any(re.search(r"mlp\.experts\.\d+\.(gate|up|down)_proj\.weight$", k)
              for k in st)
    assert not (fused and per), "mixed expert layouts"
    return "fused" if fused else "per_expert" if per else "none"


@torch.no_grad()
def ensure_per_expert_file(case_dir, model, c):
    """Check (or make) model.safetensors hold per-expert tensors equal to the
    in-memory stacked experts of `model`.  Returns (layout save_pretrained
    wrote, whether the file was rewritten)."""
    path = os.path.join(case_dir, "model.safetensors")
    st = load_file(path)
    written = expert_layout(st)
    converted = False
    if written == "fused":
        # save_pretrained wrote the stacked layout: rewrite per-expert.
        st = fused_to_per_expert(st, c)
        save_file(st, path, metadata={"format": "pt"})
        st = load_file(path)
        converted = True
    assert expert_layout(st) == "per_expert"
    want = fused_to_per_expert(
        {k: v.detach() for k, v in model.state_dict().items()}, c)
    if c["tie_word_embeddings"]:
        want.pop("lm_head.weight", None)
    assert set(st) == set(want), sorted(set(st) ^ set(want))
    for k in st:
        assert st[k].dtype == want[k].dtype and torch.equal(st[k], want[k]), k
    E, I, H = c["num_experts"], c["moe_intermediate_size"], c["hidden_size"]
    for li in moe_layers(c):
        for e in range(E):
            pre = f"model.layers.{li}.mlp.experts.{e}."
            assert list(st[pre + "gate_proj.weight"].shape) == [I, H]
            assert list(st[pre + "up_proj.weight"].shape) == [I, H]
            assert list(st[pre + "down_proj.weight"].shape) == [H, I]
        assert list(st[f"model.layers.{li}.mlp.gate.weight"].shape) == [E, H]
    return written, converted


class RouterTap:
    """Records (layer, router_logits, topk_indices) of every *TopKRouter
    call (Qwen3-MoE, Qwen3-Next, Qwen3.5-MoE) while active."""

    def __init__(self, model):
        self.model, self.calls, self.handles = model, [], []

    def __enter__(self):
        for name, mod in self.model.named_modules():
            # Qwen3MoeTopKRouter, Qwen3NextTopKRouter, Qwen3_5MoeTopKRouter
            if type(mod).__name__.endswith("TopKRouter"):
                li = int(re.search(r"layers\.(\d+)\.", name).group(1))
                self.handles.append(mod.register_forward_hook(
                    lambda m, a, out, li=li: self.calls.append(
                        (li, out[0].detach().clone(), out[2].detach().clone()))))
        assert self.handles
        return self

    def __exit__(self, *a):
        for h in self.handles:
            h.remove()


def routing_stats(calls, k):
    """Smallest top-k boundary gaps over all recorded routing decisions."""
    pg, lg = float("inf"), float("inf")
    for _, rl, idx in calls:
        # exactly HF's router: softmax in f32 of the (native-dtype) logits
        probs = torch.softmax(rl, dim=-1, dtype=torch.float)
        sp = torch.sort(probs, dim=-1, descending=True).values
        sl = torch.sort(rl.float(), dim=-1, descending=True).values
        pg = min(pg, float((sp[:, k - 1] - sp[:, k]).min()))
        lg = min(lg, float((sl[:, k - 1] - sl[:, k]).min()))
        assert torch.equal(torch.sort(idx, -1).values,
                           torch.sort(torch.topk(probs, k, -1).indices, -1).values)
    return pg, lg


def routing_sets(calls):
    return [(li, torch.sort(idx, -1).values) for li, _, idx in calls]


@torch.no_grad()
def route_check(m, m32, p, fed, k):
    """Routing decisions that the recorded data depends on: every MoE layer
    for the prompt tokens and the fed tokens fed[0..N_GREEDY-2] (their
    logits pick greedy_ids[1..]); fed None: the prompt tokens only.  Returns
    (ok, per-prompt facts, the native run's router calls)."""
    n = 0 if fed is None else N_GREEDY - 1
    with RouterTap(m) as tap:
        prompt_and_decode(m, p, decode_ids=fed, n=n)
    gap, lgap = routing_stats(tap.calls, k)
    info = {"min_router_topk_prob_gap": gap,
            "min_router_topk_logit_gap": lgap}
    ok = gap >= ROUTER_MIN_GAP
    if m32 is not None:
        with RouterTap(m32) as tap32:
            prompt_and_decode(m32, p, decode_ids=fed, n=n)
        gap32, lgap32 = routing_stats(tap32.calls, k)
        a, b = routing_sets(tap.calls), routing_sets(tap32.calls)
        same = len(a) == len(b) and all(
            x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(a, b))
        info.update({"min_router_topk_prob_gap_f32": gap32,
                     "min_router_topk_logit_gap_f32": lgap32,
                     "routing_native_matches_f32": same})
        ok = ok and gap32 >= ROUTER_MIN_GAP and same
    return ok, info, tap.calls


class RouterTie(Exception):
    pass


@torch.no_grad()
def fresh_dynamic_rope(model):
    """HF's dynamic NTK RoPE keeps the largest length it has seen
    (max_seq_len_cached) across calls and only resets below the original
    context, so a prompt shorter than an earlier generation would reuse that
    generation's base.  Every recorded generation starts from the state of a
    freshly loaded model: each forward then uses its own length, max
    position + 1 (what the compiled kernels compute)."""
    rot = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rot is None or "dynamic" not in str(getattr(rot, "rope_type", "")):
        return
    rot.inv_freq = rot.original_inv_freq.clone()
    rot.max_seq_len_cached = rot.original_max_seq_len


def prompt_and_decode(model, prompt_ids, decode_ids=None, n=N_DECODE):
    """Full forward over the prompt, then n single-token KV-cache steps.

    If decode_ids is None the fed tokens are chosen greedily from this model's
    own logits; otherwise the given tokens are fed (teacher forcing)."""
    fresh_dynamic_rope(model)
    ids = prompt_ids.view(1, -1).long()
    out = model(input_ids=ids, use_cache=True)
    prompt_logits = out.logits[0].float().clone()
    past = out.past_key_values
    fed, dec = [], []
    prev = prompt_logits[-1]
    for i in range(n):
        tok = int(decode_ids[i]) if decode_ids is not None else int(prev.argmax())
        fed.append(tok)
        out = model(input_ids=torch.tensor([[tok]]), past_key_values=past,
                    use_cache=True)
        past = out.past_key_values
        prev = out.logits[0, -1].float().clone()
        dec.append(prev)
    dec = torch.stack(dec) if dec else prompt_logits[:0]
    return prompt_logits, torch.tensor(fed, dtype=torch.int32), dec


@torch.no_grad()
def greedy(model, prompt_ids, n=N_GREEDY):
    fresh_dynamic_rope(model)
    ids = prompt_ids.view(1, -1).long()
    gc = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n,
                          eos_token_id=None, bos_token_id=None,
                          pad_token_id=0, use_cache=True)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         generation_config=gc)
    return out[0, ids.shape[1]:].to(torch.int32)


def rewrite_legacy_rope(case_dir, theta, scaling=None):
    path = os.path.join(case_dir, "config.json")
    with open(path) as f:
        d = json.load(f)
    d.pop("rope_parameters", None)
    d["rope_theta"] = theta
    d["rope_scaling"] = scaling
    with open(path, "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)
        f.write("\n")


def rewrite_hub_style(case_dir):
    """config.json as the released Qwen3-MoE checkpoints have it (written by
    transformers 4.x): "num_experts" (v5 writes "num_local_experts") and
    "torch_dtype" (v5: "dtype").  The rope keys: rewrite_legacy_rope."""
    path = os.path.join(case_dir, "config.json")
    with open(path) as f:
        d = json.load(f)
    d["num_experts"] = d.pop("num_local_experts")
    d["torch_dtype"] = d.pop("dtype")
    with open(path, "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)
        f.write("\n")


def experts_key_style(case_dir):
    with open(os.path.join(case_dir, "config.json")) as f:
        d = json.load(f)
    keys = [k for k in ("num_experts", "num_local_experts") if k in d]
    assert len(keys) == 1, keys
    return keys[0]


def rope_key_style(case_dir):
    with open(os.path.join(case_dir, "config.json")) as f:
        d = json.load(f)
    if "rope_parameters" in d:
        return "rope_parameters"
    if "rope_theta" in d:
        return "rope_theta"
    return "none"


def top_margin(logits):
    t = torch.topk(logits.float(), 2, dim=-1).values
    return float((t[..., 0] - t[..., 1]).min())


@torch.no_grad()
def gen_case(c):
    """Dense cases: one try with c["seed"].  MoE cases: the seed is redrawn
    (c["seed"] + t * SEED_REDRAW_STEP) while a routing decision on the
    recorded paths is a near-tie (RouterTie); meta.json lists the rejects."""
    return with_seed_redraws(c, is_moe(c), gen_case_seed)


def with_seed_redraws(c, moe, gen_seed):
    """gen_seed(c, seed, rejected) with c["seed"]; for MoE cases the seed is
    redrawn (+SEED_REDRAW_STEP) while it raises RouterTie."""
    if not moe:
        return gen_seed(c, c["seed"])
    rejected = []
    for t in range(MAX_SEED_TRIES):
        seed = c["seed"] + t * SEED_REDRAW_STEP
        try:
            return gen_seed(c, seed, rejected)
        except RouterTie as e:
            log(f"  seed {seed} rejected: {e}")
            rejected.append({"seed": seed, "reason": str(e)})
    raise RuntimeError(f"{c['name']}: no seed without router near-ties")


@torch.no_grad()
def gen_case_seed(c, seed, rejected=None):
    name, dt = c["name"], c["dtype"]
    moe = is_moe(c)
    impl = MOE_EXPERTS_IMPL if moe else None
    case_dir = os.path.join(REF_DIR, name)
    log(f"== {name}" + (f" (seed {seed})" if seed != c["seed"] else ""))
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)

    model = build_model(c, seed)
    fp8_stored = fp8_quantize_model(model, c["fp8_block"]) if "fp8_block" in c else None
    hf_fp8_stored = (hf_fp8_quantize_model(model, c["hf_fp8_quantize"])
                     if "hf_fp8_quantize" in c else None)
    model.generation_config = GenerationConfig(
        do_sample=False, bos_token_id=None, eos_token_id=None,
        pad_token_id=None)
    model.save_pretrained(case_dir, safe_serialization=True)
    if moe:
        # The file must hold per-expert tensors (as the released checkpoints
        # do) equal to the in-memory stacked experts; converted if not.
        layout_written, layout_converted = ensure_per_expert_file(
            case_dir, model, c)

    # Logits of the checkpoint exactly as save_pretrained wrote it, before
    # any config.json edit.  (Not the in-memory model: model.to(bf16) also
    # casts the rotary inv_freq buffer, which from_pretrained keeps in f32.)
    pre = load(case_dir, DTYPES[dt], c, impl)
    del model
    if c["rope_style"] == "legacy":
        rewrite_legacy_rope(case_dir, c["rope_theta"], c.get("rope_scaling"))
    if c.get("config_style", "native") == "hub":
        rewrite_hub_style(case_dir)

    # Everything recorded is computed from the checkpoint as loaded from disk.
    m = load(case_dir, DTYPES[dt], c, impl)
    assert m.dtype == DTYPES[dt], m.dtype
    assert abs(config_rope_theta(m.config) - c["rope_theta"]) < 1e-3
    if "rope_scaling" in c:
        want = c["rope_scaling"]["rope_type"]
        assert m.config.rope_parameters["rope_type"] == want, m.config.rope_parameters
        assert m.model.rotary_emb.rope_type == want
    m32 = None
    if dt != "f32":
        m32 = load(case_dir, torch.float32, c, impl)
        assert m32.dtype == torch.float32
    if moe:
        assert m.config.num_experts == c["num_experts"]
        assert [i for i, l in enumerate(m.model.layers)
                if type(l.mlp).__name__ == "Qwen3MoeSparseMoeBlock"] == moe_layers(c)
        # HF's default experts implementation, for comparison only
        mdef = load(case_dir, DTYPES[dt], c, None)
        default_impl = mdef.config._experts_implementation
        top_k = c["num_experts_per_tok"]

    g = torch.Generator().manual_seed(seed + 13)
    max_tries = MOE_MAX_PROMPT_TRIES if moe else MAX_PROMPT_TRIES
    tensors = {}
    facts = {"greedy_matches_decode": True, "prompts": []}
    for k, L in enumerate(c.get("prompt_lens", PROMPT_LENS)):
        # Draw random prompts (seeded) until every greedy decision of the
        # recorded path (the first generated token and the N_GREEDY-1 after
        # it) is clear: top-2 margin >= MIN_MARGIN[dt] in the native logits
        # and, for bf16/f16, >= MIN_MARGIN["f32"] in the f32-upcast logits
        # with the same argmax.  Runtimes that differ from HF by rounding
        # then still reproduce greedy_ids exactly.
        router_rejects = 0
        for attempt in range(1, max_tries + 1):
            p = torch.randint(0, c["vocab_size"], (L,), generator=g,
                              dtype=torch.int64).to(torch.int32)
            if moe and not route_check(m, m32, p, None, top_k)[0]:
                router_rejects += 1  # cheap early-out: prompt tokens only
                continue
            pl, fed, dl = prompt_and_decode(m, p, n=N_GREEDY)
            dec_logits = torch.cat([pl[-1:], dl[:-1]])  # chose fed[0..G-1]
            ok = top_margin(dec_logits) >= MIN_MARGIN[dt]
            if ok and m32 is not None:
                pl32, _, dl32 = prompt_and_decode(m32, p, decode_ids=fed,
                                                  n=N_GREEDY)
                d32 = torch.cat([pl32[-1:], dl32[:-1]])
                ok = (top_margin(d32) >= MIN_MARGIN["f32"] and
                      torch.equal(d32.argmax(-1).to(torch.int32), fed))
            if ok and moe:
                # (MoE) a continuation that is not one repeated token, so the
                # decode steps route different tokens ...
                ok = len(set(fed.tolist())) >= MOE_MIN_DISTINCT_GREEDY
            if ok and moe:
                # ... and every routing decision on that path is clear:
                # top-k boundary prob gap >= ROUTER_MIN_GAP, in the f32 run
                # too, which must route like the native one.
                ok, rinfo, rcalls = route_check(m, m32, p, fed, top_k)
                router_rejects += not ok
            if ok:
                break
        else:
            if moe and router_rejects:
                raise RouterTie(f"p{k}: no prompt of {max_tries} "
                                f"without router near-ties")
            raise RuntimeError(f"{name}: no clear prompt of length {L}")
        assert torch.isfinite(pl).all() and torch.isfinite(dl).all()
        pl_pre = prompt_and_decode(pre, p, n=0)[0]
        assert torch.equal(pl, pl_pre), f"{name}: config edit changed logits"

        dec_ids, decl = fed[:N_DECODE], dl[:N_DECODE]
        gi = greedy(m, p)
        match = torch.equal(gi[:N_DECODE], dec_ids)
        if not match:
            log(f"  MISMATCH p{k}: greedy {gi.tolist()} decode {dec_ids.tolist()}")
            facts["greedy_matches_decode"] = False
        if not torch.equal(gi, fed):
            log(f"  note p{k}: generate() {gi.tolist()} != KV loop {fed.tolist()}")
        tensors[f"p{k}.prompt_ids"] = p.clone()
        tensors[f"p{k}.prompt_logits"] = pl.contiguous()
        tensors[f"p{k}.decode_ids"] = dec_ids.clone()
        tensors[f"p{k}.decode_logits"] = decl.contiguous()
        tensors[f"p{k}.greedy_ids"] = gi.contiguous()
        pf = {"k": k, "prompt_len": L, "prompt_draws": attempt,
              "greedy_matches_decode": match,
              "greedy_matches_kv_loop_all": bool(torch.equal(gi, fed)),
              "min_top2_margin_greedy_path": top_margin(dec_logits),
              "logits_std": float(torch.cat([pl, decl]).std()),
              "logits_absmax": float(torch.cat([pl, decl]).abs().max())}
        if m32 is not None:
            tensors[f"p{k}.prompt_logits_f32"] = pl32.contiguous()
            tensors[f"p{k}.decode_logits_f32"] = dl32[:N_DECODE].contiguous()
            pf["min_top2_margin_greedy_path_f32"] = top_margin(d32)
            pf["max_abs_diff_native_vs_f32_prompt"] = float(
                (pl32 - pl).abs().max())
            pf["max_abs_diff_native_vs_f32_decode"] = float(
                (dl32[:N_DECODE] - decl).abs().max())
        if moe:
            pf.update(rinfo)
            pf["prompt_draws_rejected_for_router_ties"] = router_rejects
            if k == 1:
                # first router call = the prompt forward in the first MoE
                # layer; indices in HF's order (descending probability)
                li, _, idx = rcalls[0]
                assert li == moe_layers(c)[0] and idx.shape == (L, top_k)
                tensors["p1.router_topk_ids"] = idx.to(torch.int32).contiguous()
            # HF's default experts implementation on the same path
            pld, _, dld = prompt_and_decode(mdef, p, decode_ids=dec_ids)
            pf["max_abs_diff_vs_default_experts_prompt"] = float(
                (pld - pl).abs().max())
            pf["max_abs_diff_vs_default_experts_decode"] = float(
                (dld - decl).abs().max())
            pf["greedy_ids_same_with_default_experts"] = bool(
                torch.equal(greedy(mdef, p), gi))
        facts["prompts"].append(pf)
        log(f"  p{k}: len {L}, draws {attempt}, greedy {gi.tolist()}"
            + (f", router gap {rinfo['min_router_topk_prob_gap']:.3g}, "
               f"{router_rejects} router rejects" if moe else ""))

    save_file(tensors, os.path.join(case_dir, "reference.safetensors"),
              # one key only: safetensors orders metadata keys by hash, so
              # several keys would make the file bytes vary from run to run
              metadata={"generator": "scripts/gen_reference.py; transformers "
                        f"{transformers.__version__}; torch {torch.__version__}"})
    # sanity: re-read
    back = load_file(os.path.join(case_dir, "reference.safetensors"))
    assert set(back) == set(tensors)

    st = load_file(os.path.join(case_dir, "model.safetensors"))
    meta = {
        "case": name, "dtype": dt, "note": c["note"], "seed": seed,
        "vocab_size": c["vocab_size"], "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "head_dim": c["head_dim"],
        "gqa_ratio": c["num_attention_heads"] // c["num_key_value_heads"],
        "tie_word_embeddings": c["tie_word_embeddings"],
        "attention_bias": c["attention_bias"], "rope_theta": c["rope_theta"],
        "rope_config_key": rope_key_style(case_dir),
        "rms_norm_eps": c["rms_norm_eps"],
        "max_position_embeddings": c["max_position_embeddings"],
        "rope_scaling": c.get("rope_scaling"),
        "rope_attention_scaling": float(m.model.rotary_emb.attention_scaling),
        "initializer_range": INITIALIZER_RANGE, "norm_weight_std": NORM_STD,
        "bias_std": BIAS_STD if c["attention_bias"] else None,
    }
    if moe:
        meta.update({
            "arch": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"],
            "config_style": c["config_style"],
            "experts_config_key": experts_key_style(case_dir),
            "num_experts": c["num_experts"],
            "num_experts_per_tok": c["num_experts_per_tok"],
            "moe_intermediate_size": c["moe_intermediate_size"],
            "norm_topk_prob": c["norm_topk_prob"],
            "decoder_sparse_step": c["decoder_sparse_step"],
            "mlp_only_layers": list(c["mlp_only_layers"]),
            "moe_layers": moe_layers(c),
            "dense_mlp_layers": [i for i in range(c["num_hidden_layers"])
                                 if i not in moe_layers(c)],
            "expert_layout_written_by_save_pretrained": layout_written,
            "expert_layout_in_file": "per_expert",
            "expert_layout_converted_by_generator": layout_converted,
            "router_weight_std": ROUTER_STD,
            "router_min_topk_prob_gap_required": ROUTER_MIN_GAP,
            "routing_native_must_match_f32": dt != "f32",
            "min_distinct_greedy_ids": MOE_MIN_DISTINCT_GREEDY,
            "seed_requested": c["seed"],
            "seeds_rejected_for_router_ties": rejected or [],
            "experts_implementation": MOE_EXPERTS_IMPL,
            "default_experts_implementation": default_impl,
        })
    meta.update({
        "eos_token_id": None,
        "prompt_lens": list(c.get("prompt_lens", PROMPT_LENS)), "min_margin": MIN_MARGIN[dt],
        "min_margin_f32": MIN_MARGIN["f32"] if dt != "f32" else None, "n_decode": N_DECODE,
        "n_greedy": N_GREEDY,
        "attn_implementation": "eager", "device": "cpu",
        "model_tensors": {k: f"{str(v.dtype).replace('torch.', '')} {list(v.shape)}"
                          for k, v in sorted(st.items())},
        "reference_tensors": sorted(tensors),
        "transformers": transformers.__version__, "torch": torch.__version__,
        **facts,
    })
    if fp8_stored is not None:
        # The references ran on the dequantized f32 weights; the file now
        # holds what they decode from.
        write_fp8_checkpoint(case_dir, fp8_stored, c["fp8_block"])
        meta["fp8_weight_block_size"] = list(c["fp8_block"])
        meta["fp8_tensors"] = sorted(fp8_stored)
        meta["reference_weights"] = "HF f32 on the dequantized FP8 weights"
    if hf_fp8_stored is not None:
        write_hf_fp8_case(case_dir, hf_fp8_stored)
        meta["hf_fp8_block"] = list(c["hf_fp8_quantize"])
        meta["hf_fp8_tensors"] = sorted(hf_fp8_stored)
        meta["reference_weights"] = ("HF f32 on the dequantized output of transformers' "
                                     "Fp8Quantize; model.safetensors holds the f32 source")
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        f.write(compact_json(meta) + "\n")
    for fn in os.listdir(case_dir):  # safetensors writes 0600 files
        os.chmod(os.path.join(case_dir, fn), 0o644)
    if moe:
        log(f"  experts: {layout_written} written by save_pretrained, "
            f"config key {meta['experts_config_key']}")
    log(f"  rope key: {meta['rope_config_key']}, greedy==decode: "
        f"{facts['greedy_matches_decode']}, lm_head in file: "
        f"{'lm_head.weight' in st}")
    return meta


# ----------------------------------------------------------------------------
# Hybrid Gated-DeltaNet cases: Qwen3.5 (qwen3_5), Qwen3-Next (qwen3_next),
# Qwen3.5-MoE (qwen3_5_moe).  Same reference.safetensors format as above; the
# checkpoints follow the layouts of the released models (see
# test/data/reference/README.md and /work/shared/docs/qwen-models.md).

# The HF torch GDN prefill is chunked (chunk 64): the longest prompt spans two
# chunks, the 17-token one a partial chunk, the 1-token one a single step.
HYBRID_PROMPT_LENS = (1, 17, 70)

LIN, FULL = "linear_attention", "full_attention"

# Tiny vision tower of the *ForConditionalGeneration cases: its tensors
# (model.visual.*) are in model.safetensors and unused by text-only inference.
TINY_VISION = dict(depth=1, hidden_size=8, intermediate_size=16, num_heads=2,
                   in_channels=3, patch_size=2, temporal_patch_size=2,
                   spatial_merge_size=2, num_position_embeddings=16)

# Keys every hybrid case sets (None where not applicable):
#   arch: qwen3_5 | qwen3_next | qwen3_5_moe;  cls: the transformers class
#   that writes (save_pretrained) and reads (from_pretrained) the checkpoint.
#   layer_types: written explicitly to config.json; None: config.json has no
#   layer_types but full_attention_interval (HF: layer i is full attention
#   iff (i + 1) % interval == 0).
#   tie_word_embeddings: top level (the ForConditionalGeneration model's own
#   config, which HF uses to tie); text_tie_word_embeddings: inside text_config.
#   partial_rotary_factor, mrope_section (Qwen3.5 only: rope_parameters
#   mrope_section / mrope_interleaved; text-only positions make it plain
#   partial RoPE), rope_theta.
#   mtp: add fake mtp.* tensors to model.safetensors (the released checkpoints
#   have an MTP head; HF ignores it: _keys_to_ignore_on_load_unexpected).
#   keep_f32: (bf16 cases) store linear_attn.A_log and linear_attn.norm.weight
#   as F32 in model.safetensors, everything else BF16, like the released
#   Qwen3.5 checkpoints.
#   expert_layout (MoE): "fused" (mlp.experts.gate_up_proj [E, 2I, H] +
#   mlp.experts.down_proj [E, H, I], the released Qwen3.5-MoE layout) or
#   "per_expert" (mlp.experts.e.{gate,up,down}_proj.weight, what
#   transformers 5.23's save_pretrained writes and what Qwen3-Next ships).
_HYB = dict(rms_norm_eps=1e-6, max_position_embeddings=256,
            linear_conv_kernel_dim=4, prompt_lens=HYBRID_PROMPT_LENS,
            full_attention_interval=None, intermediate_size=None,
            text_tie_word_embeddings=None, mrope_section=None, mtp=False,
            keep_f32=False, num_experts=0, num_experts_per_tok=None,
            moe_intermediate_size=None, shared_expert_intermediate_size=None,
            norm_topk_prob=None, decoder_sparse_step=None,
            mlp_only_layers=None, expert_layout=None)

HYBRID_CASES = [dict(_HYB, **c) for c in [
    dict(name="qwen35_f32_tied_nv_eq_nk", arch="qwen3_5",
         cls="Qwen3_5ForConditionalGeneration", dtype="f32", seed=3001,
         vocab_size=320, hidden_size=32, intermediate_size=48,
         num_hidden_layers=4, layer_types=[LIN, LIN, LIN, FULL],
         num_attention_heads=2, num_key_value_heads=1, head_dim=32,
         partial_rotary_factor=0.25, mrope_section=[2, 1, 1],
         rope_theta=10000.0, linear_num_key_heads=2,
         linear_num_value_heads=2, linear_key_head_dim=16,
         linear_value_head_dim=16, tie_word_embeddings=True,
         text_tie_word_embeddings=True, mtp=True,
         note="Qwen3.5 dense, VL layout (text_config, model.language_model.*, "
              "tiny model.visual.*, fake mtp.*), tied (top level and "
              "text_config), nv == nk, explicit layer_types [lin, lin, lin, "
              "full], GQA 2, head_dim 32, partial rotary 0.25 (rotary dim 8)"),
    dict(name="qwen35_f32_untied_nv_2nk", arch="qwen3_5",
         cls="Qwen3_5ForCausalLM", dtype="f32", seed=3002,
         vocab_size=336, hidden_size=32, intermediate_size=48,
         num_hidden_layers=4, layer_types=None, full_attention_interval=2,
         num_attention_heads=4, num_key_value_heads=1, head_dim=16,
         partial_rotary_factor=0.5, mrope_section=[2, 1, 1],
         rope_theta=1000000.0, linear_num_key_heads=2,
         linear_num_value_heads=4, linear_key_head_dim=8,
         linear_value_head_dim=16, tie_word_embeddings=False,
         note="Qwen3.5 dense, text-only Qwen3_5ForCausalLM (flat model.*, "
              "model_type qwen3_5_text, no text_config), untied, nv = 2 nk, "
              "dk 8 != dv 16, no layer_types in config.json: "
              "full_attention_interval 2 -> [lin, full, lin, full], GQA 4, "
              "head_dim 16, partial rotary 0.5 (rotary dim 8)"),
    dict(name="qwen35_bf16_mixed", arch="qwen3_5",
         cls="Qwen3_5ForConditionalGeneration", dtype="bf16", seed=3003,
         vocab_size=320, hidden_size=32, intermediate_size=48,
         num_hidden_layers=4, layer_types=[FULL, LIN, LIN, FULL],
         num_attention_heads=2, num_key_value_heads=1, head_dim=32,
         partial_rotary_factor=0.25, mrope_section=[2, 1, 1],
         rope_theta=1000000.0, linear_num_key_heads=2,
         linear_num_value_heads=4, linear_key_head_dim=16,
         linear_value_head_dim=16, tie_word_embeddings=True,
         text_tie_word_embeddings=False, mtp=True, keep_f32=True,
         note="Qwen3.5 dense bf16, VL layout, linear_attn.A_log and "
              "linear_attn.norm.weight stored F32 (full f32 precision), the "
              "rest BF16; starts with a full-attention layer [full, lin, lin, "
              "full]; nv = 2 nk; tied at the top level only "
              "(text_config.tie_word_embeddings false)"),
    dict(name="qwen3_next_f32", arch="qwen3_next", cls="Qwen3NextForCausalLM",
         dtype="f32", seed=3004, vocab_size=352, hidden_size=32,
         intermediate_size=48, num_hidden_layers=4, layer_types=None,
         full_attention_interval=3, num_attention_heads=4,
         num_key_value_heads=2, head_dim=16, partial_rotary_factor=0.5,
         rope_theta=1000000.0, linear_num_key_heads=2,
         linear_num_value_heads=4, linear_key_head_dim=16,
         linear_value_head_dim=8, tie_word_embeddings=False, mtp=True,
         num_experts=8, num_experts_per_tok=2, moe_intermediate_size=8,
         shared_expert_intermediate_size=16, norm_topk_prob=True,
         decoder_sparse_step=1, mlp_only_layers=[1],
         expert_layout="per_expert",
         note="Qwen3-Next: grouped in_proj_qkvz / in_proj_ba, per-expert "
              "experts + shared expert with sigmoid gate, 8 experts top-2 "
              "renormalised, mlp_only_layers [1] (layer 1 dense MLP), no "
              "layer_types in config.json: full_attention_interval 3 -> "
              "[lin, lin, full, lin]; nv = 2 nk, dk 16 != dv 8, fake mtp.*"),
    dict(name="qwen35_moe_f32", arch="qwen3_5_moe",
         cls="Qwen3_5MoeForConditionalGeneration", dtype="f32", seed=3005,
         vocab_size=320, hidden_size=32, num_hidden_layers=4,
         layer_types=[LIN, FULL, LIN, LIN], num_attention_heads=2,
         num_key_value_heads=1, head_dim=32, partial_rotary_factor=0.25,
         mrope_section=[2, 1, 1], rope_theta=10000000.0,
         linear_num_key_heads=2, linear_num_value_heads=4,
         linear_key_head_dim=8, linear_value_head_dim=8,
         tie_word_embeddings=False, text_tie_word_embeddings=False, mtp=True,
         num_experts=8, num_experts_per_tok=2, moe_intermediate_size=8,
         shared_expert_intermediate_size=16, expert_layout="fused",
         note="Qwen3.5-MoE: VL layout, FUSED experts on disk (gate_up_proj "
              "[E, 2I, H], down_proj [E, H, I], as the released bf16 "
              "checkpoints), shared expert, 8 experts top-2 (always "
              "renormalised), untied, [lin, full, lin, lin], nv = 2 nk, "
              "rope_theta 1e7, fake mtp.*"),
    dict(name="qwen35_moe_bf16", arch="qwen3_5_moe",
         cls="Qwen3_5MoeForConditionalGeneration", dtype="bf16", seed=3006,
         vocab_size=288, hidden_size=32, num_hidden_layers=3,
         layer_types=[LIN, LIN, FULL], num_attention_heads=2,
         num_key_value_heads=2, head_dim=32, partial_rotary_factor=0.5,
         mrope_section=[3, 3, 2], rope_theta=1000000.0,
         linear_num_key_heads=1, linear_num_value_heads=4,
         linear_key_head_dim=16, linear_value_head_dim=8,
         tie_word_embeddings=True, text_tie_word_embeddings=True,
         keep_f32=True, num_experts=6, num_experts_per_tok=3,
         moe_intermediate_size=8, shared_expert_intermediate_size=16,
         expert_layout="per_expert",
         note="Qwen3.5-MoE bf16 (A_log / linear norm F32): experts PER-EXPERT "
              "on disk (what transformers 5.23 save_pretrained writes), 6 "
              "experts top-3, tied, nk 1 / nv 4 (GVA ratio 4), MHA (2/2), "
              "partial rotary 0.5 (rotary dim 16, mrope_section [3, 3, 2])"),
]]

HYBRID_ZC_NORMS = ("Qwen3_5RMSNorm", "Qwen3_5MoeRMSNorm", "Qwen3NextRMSNorm")
# Gated DeltaNet parameters (HF initialises A_log = log U(0.01, 16),
# dt_bias = 1, conv1d kaiming): A = exp(A_log) ~ U(1, 16); dt_bias around -4
# so that softplus(a + dt_bias) ~ 0.02 and the per-step decay exp(g) spreads
# over ~0.4-0.99 (meta.json: gdn_decay_*): the recurrent state carries
# information across many tokens and across the 64-token chunk boundary.
GDN_A_RANGE = (1.0, 16.0)
GDN_DT_BIAS_MEAN, GDN_DT_BIAS_STD = -4.0, 0.5
GDN_CONV_STD = 0.3
HYBRID_MIN_DISTINCT_GREEDY = 3
# bf16 hybrid cases: HF's native bf16 run differs from its f32 run on the
# same weights much more than in the Qwen3 cases (max |diff| ~0.2-0.6, per-row
# cosine ~0.99-0.999 vs <= 0.13 / >= 0.9997): every GDN layer is trilinear in
# its input (q, k, v) and then RMS-normalised, so it amplifies the bf16
# rounding of its input ~2-3x.  Prompts are NOT selected for a small
# difference; meta.json records it per prompt (max_abs_diff_native_vs_f32_*,
# min_row_cosine_native_vs_f32).
HYBRID_HALF_NOTE = ("native bf16 vs f32 logits differ by up to ~0.2-0.6 "
                    "(per-row cosine >= ~0.99): not selected for; compare "
                    "an f32 runtime tightly with the *_f32 references")
HYBRID_MAX_PROMPT_TRIES = 2000
HYBRID_MOE_MAX_PROMPT_TRIES = 400     # per prompt, tails redrawn (below)
HYBRID_MOE_MAX_TOKEN_TRIES = 2000     # per prompt position
GDN_FUNCS = ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule",
             "causal_conv1d_fn", "causal_conv1d_update")


def is_hybrid(c):
    return c.get("arch") in ("qwen3_5", "qwen3_next", "qwen3_5_moe")


def hybrid_is_moe(c):
    return c["arch"] in ("qwen3_next", "qwen3_5_moe")


def hybrid_is_vl(c):
    return c["cls"].endswith("ForConditionalGeneration")


def hybrid_layer_types(c):
    if c["layer_types"] is not None:
        return list(c["layer_types"])
    iv = c["full_attention_interval"]
    return [LIN if (i + 1) % iv else FULL for i in range(c["num_hidden_layers"])]


def hybrid_moe_layers(c):
    if not hybrid_is_moe(c):
        return []
    if c["arch"] == "qwen3_5_moe":   # every layer
        return list(range(c["num_hidden_layers"]))
    return [i for i in range(c["num_hidden_layers"])
            if i not in c["mlp_only_layers"] and c["num_experts"] > 0
            and (i + 1) % c["decoder_sparse_step"] == 0]


def hybrid_rotary_dim(c):
    return int(c["head_dim"] * c["partial_rotary_factor"])


def hybrid_modeling_module(c):
    import importlib
    return importlib.import_module(
        f"transformers.models.{c['arch']}.modeling_{c['arch']}")


def make_hybrid_config(c):
    rp = {"rope_type": "default", "rope_theta": c["rope_theta"],
          "partial_rotary_factor": c["partial_rotary_factor"]}
    if c["arch"] != "qwen3_next":
        rp.update(mrope_section=list(c["mrope_section"]),
                  mrope_interleaved=True)
        assert sum(c["mrope_section"]) == hybrid_rotary_dim(c) // 2
    kw = dict(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
        hidden_act="silu", max_position_embeddings=c["max_position_embeddings"],
        rms_norm_eps=c["rms_norm_eps"], attention_bias=False,
        attention_dropout=0.0, initializer_range=INITIALIZER_RANGE,
        use_cache=True, bos_token_id=None, eos_token_id=None,
        pad_token_id=None, rope_parameters=rp,
        linear_conv_kernel_dim=c["linear_conv_kernel_dim"],
        linear_key_head_dim=c["linear_key_head_dim"],
        linear_value_head_dim=c["linear_value_head_dim"],
        linear_num_key_heads=c["linear_num_key_heads"],
        linear_num_value_heads=c["linear_num_value_heads"])
    if c["arch"] != "qwen3_5_moe":
        kw["intermediate_size"] = c["intermediate_size"]
    if c["layer_types"] is not None:
        kw["layer_types"] = list(c["layer_types"])
    else:
        kw["full_attention_interval"] = c["full_attention_interval"]
    if hybrid_is_moe(c):
        kw.update(num_experts=c["num_experts"],
                  num_experts_per_tok=c["num_experts_per_tok"],
                  moe_intermediate_size=c["moe_intermediate_size"],
                  shared_expert_intermediate_size=c[
                      "shared_expert_intermediate_size"],
                  output_router_logits=False)
    if c["arch"] == "qwen3_next":
        kw.update(norm_topk_prob=c["norm_topk_prob"],
                  decoder_sparse_step=c["decoder_sparse_step"],
                  mlp_only_layers=list(c["mlp_only_layers"]),
                  tie_word_embeddings=c["tie_word_embeddings"])
        cfg = transformers.Qwen3NextConfig(**kw)
    elif hybrid_is_vl(c):
        kw["tie_word_embeddings"] = c["text_tie_word_embeddings"]
        vis = dict(TINY_VISION, out_hidden_size=c["hidden_size"])
        top = (transformers.Qwen3_5Config if c["arch"] == "qwen3_5"
               else transformers.Qwen3_5MoeConfig)
        cfg = top(text_config=kw, vision_config=vis,
                  tie_word_embeddings=c["tie_word_embeddings"])
    else:
        assert c["arch"] == "qwen3_5"
        kw["tie_word_embeddings"] = c["tie_word_embeddings"]
        cfg = transformers.Qwen3_5TextConfig(**kw)
    cfg.architectures = [c["cls"]]
    tc = cfg.get_text_config()
    assert tc.layer_types == hybrid_layer_types(c), tc.layer_types
    assert tc.rope_parameters["partial_rotary_factor"] == c["partial_rotary_factor"]
    return cfg


def hybrid_class(c):
    return getattr(transformers, c["cls"])


def text_model(m):
    return m.model.language_model if hasattr(m.model, "language_model") else m.model


@torch.no_grad()
def build_hybrid_model(c, seed):
    """The model in float32 with every parameter redrawn from our own
    generator (independent of transformers' initialisation)."""
    cfg = make_hybrid_config(c)
    torch.manual_seed(seed)
    kw = dict(attn_implementation="eager")
    if hybrid_is_moe(c):
        kw["experts_implementation"] = MOE_EXPERTS_IMPL
    model = hybrid_class(c)._from_config(cfg, dtype=torch.float32, **kw)
    owner = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = (type(mod).__name__, pname)
    g = torch.Generator().manual_seed(seed + 7)
    kinds = {}
    for name, p in model.named_parameters():
        cls, pname = owner[name]
        rn = torch.randn(p.shape, generator=g)
        if cls in HYBRID_ZC_NORMS:           # zero-centred: scale = 1 + w
            v, kind = NORM_STD * rn, "zero_centred_norm"
        elif cls.endswith("RMSNormGated"):   # plain weight, around 1
            v, kind = 1.0 + NORM_STD * rn, "gated_norm"
        elif cls.endswith("GatedDeltaNet") and pname == "A_log":
            lo, hi = GDN_A_RANGE
            u = torch.rand(p.shape, generator=g)
            v, kind = torch.log(lo + (hi - lo) * u), "A_log"
        elif cls.endswith("GatedDeltaNet") and pname == "dt_bias":
            v, kind = GDN_DT_BIAS_MEAN + GDN_DT_BIAS_STD * rn, "dt_bias"
        elif cls == "Conv1d" and name.endswith("linear_attn.conv1d.weight"):
            v, kind = GDN_CONV_STD * rn, "conv1d"
        elif cls.endswith("TopKRouter"):
            v, kind = ROUTER_STD * rn, "router"
        elif cls == "LayerNorm":             # vision tower
            v = (1.0 + NORM_STD * rn) if pname == "weight" else BIAS_STD * rn
            kind = "layernorm"
        elif pname == "bias":                # vision tower
            v, kind = BIAS_STD * rn, "bias"
        else:
            v, kind = INITIALIZER_RANGE * rn, "linear"
        p.copy_(v)
        kinds[name] = kind
    return model.eval(), kinds


def per_expert_to_fused(st, E):
    """per-expert mlp.experts.e.{gate,up,down}_proj.weight -> the fused
    Qwen3.5-MoE layout: gate_up_proj [E, 2I, H] (rows [0, I) gate, [I, 2I)
    up) and down_proj [E, H, I]."""
    out, groups = {}, {}
    for k, v in st.items():
        mo = re.match(r"(.*\.mlp\.experts\.)(\d+)\.(gate|up|down)_proj\.weight$", k)
        if mo:
            groups.setdefault(mo.group(1), {})[(int(mo.group(2)), mo.group(3))] = v
        else:
            out[k] = v
    for pre, d in groups.items():
        assert len(d) == 3 * E, (pre, len(d))
        out[pre + "gate_up_proj"] = torch.stack(
            [torch.cat([d[(e, "gate")], d[(e, "up")]], 0) for e in range(E)]).contiguous()
        out[pre + "down_proj"] = torch.stack(
            [d[(e, "down")] for e in range(E)]).contiguous()
    return out


def fake_mtp_tensors(c, seed, dtype, layout):
    """A few mtp.* tensors named and shaped like (part of) the MTP head of
    the released Qwen3-Next / Qwen3.5 checkpoints: fc, norms, some of layer 0
    (attention, and for MoE the router and all experts in the file's expert
    layout).  HF ignores them; a runtime must too."""
    g = torch.Generator().manual_seed(seed + 29)
    H, hd = c["hidden_size"], c["head_dim"]
    nH, nKV = c["num_attention_heads"], c["num_key_value_heads"]

    def r(*shape, std=INITIALIZER_RANGE):
        return (std * torch.randn(shape, generator=g)).to(dtype)
    t = {"mtp.fc.weight": r(H, 2 * H)}
    for n in ("pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"):
        t[f"mtp.{n}.weight"] = r(H, std=NORM_STD)
    p = "mtp.layers.0."
    t[p + "input_layernorm.weight"] = r(H, std=NORM_STD)
    t[p + "post_attention_layernorm.weight"] = r(H, std=NORM_STD)
    t[p + "self_attn.q_proj.weight"] = r(2 * nH * hd, H)
    t[p + "self_attn.k_proj.weight"] = r(nKV * hd, H)
    t[p + "self_attn.q_norm.weight"] = r(hd, std=NORM_STD)
    if hybrid_is_moe(c):
        E, I = c["num_experts"], c["moe_intermediate_size"]
        t[p + "mlp.gate.weight"] = r(E, H, std=ROUTER_STD)
        if layout == "fused":
            t[p + "mlp.experts.gate_up_proj"] = r(E, 2 * I, H)
            t[p + "mlp.experts.down_proj"] = r(E, H, I)
        else:
            for e in range(E):
                t[p + f"mlp.experts.{e}.gate_proj.weight"] = r(I, H)
                t[p + f"mlp.experts.{e}.up_proj.weight"] = r(I, H)
                t[p + f"mlp.experts.{e}.down_proj.weight"] = r(H, I)
        t[p + "mlp.shared_expert_gate.weight"] = r(1, H)
    else:
        I = c["intermediate_size"]
        t[p + "mlp.gate_proj.weight"] = r(I, H)
    return t


KEEP_F32_SUFFIXES = ("linear_attn.A_log", "linear_attn.norm.weight")


@torch.no_grad()
def finish_hybrid_file(case_dir, c, model, model32, seed):
    """Bring model.safetensors (as save_pretrained wrote it) to the case's
    on-disk form: expert layout, F32 A_log / linear norm, fake mtp.*.  Checks
    that every tensor is what the in-memory model holds.  Returns facts."""
    path = os.path.join(case_dir, "model.safetensors")
    st = load_file(path)
    facts = {"file_rewritten_by_generator": False}
    moe = hybrid_is_moe(c)
    written = expert_layout(st) if moe else None
    facts["expert_layout_written_by_save_pretrained"] = written
    changed = []
    if moe and written != c["expert_layout"]:
        if c["expert_layout"] == "fused":
            st = per_expert_to_fused(st, c["num_experts"])
        else:
            st = fused_to_per_expert(st, c)
        changed.append(f"experts {written} -> {c['expert_layout']}")
    f32_keys = []
    if c["keep_f32"]:
        sd32 = model32.state_dict()
        for k in sorted(st):
            if k.endswith(KEEP_F32_SUFFIXES):
                st[k] = sd32[k].detach().clone().contiguous()
                f32_keys.append(k)
        assert f32_keys
        changed.append("A_log / linear_attn.norm.weight -> F32")
    mtp = {}
    if c["mtp"]:
        mtp = fake_mtp_tensors(c, seed, DTYPES[c["dtype"]], c["expert_layout"])
        assert not set(mtp) & set(st)
        st.update(mtp)
        changed.append(f"{len(mtp)} fake mtp.* tensors added")
    if changed:
        save_file(st, path, metadata={"format": "pt"})
        facts["file_rewritten_by_generator"] = True
    facts["file_edits"] = changed
    st = load_file(path)
    # what the file must hold: the in-memory model (native dtype) ...
    want = {k: v.detach() for k, v in model.state_dict().items()}
    if c["tie_word_embeddings"]:
        want.pop("lm_head.weight")
    if moe and c["expert_layout"] == "per_expert":
        want = fused_to_per_expert(want, c)
    for k in f32_keys:             # ... with the f32 originals kept ...
        want[k] = model32.state_dict()[k].detach()
    want.update(mtp)               # ... plus mtp.*
    assert set(st) == set(want), sorted(set(st) ^ set(want))
    for k in st:
        assert st[k].dtype == want[k].dtype and torch.equal(st[k], want[k]), k
    if moe:
        assert expert_layout(st) == c["expert_layout"]
    facts["f32_tensors_in_file"] = f32_keys
    facts["mtp_tensors_in_file"] = sorted(mtp)
    facts["visual_tensors_in_file"] = sum(k.startswith("model.visual.") for k in st)
    facts["lm_head_in_file"] = "lm_head.weight" in st
    facts["file_dtypes"] = sorted({str(v.dtype).replace("torch.", "") for v in st.values()})
    return facts


def edit_hybrid_config(case_dir, c):
    """config.json edits: drop layer_types for the full_attention_interval
    cases (transformers 5.23 always writes layer_types and never
    full_attention_interval).  Returns the list of edits."""
    path = os.path.join(case_dir, "config.json")
    with open(path) as f:
        d = json.load(f)
    tc = d.get("text_config", d)
    assert tc["layer_types"] == hybrid_layer_types(c), tc["layer_types"]
    assert "full_attention_interval" not in tc
    edits = []
    if c["layer_types"] is None:
        del tc["layer_types"]
        tc["full_attention_interval"] = c["full_attention_interval"]
        edits.append("layer_types removed, full_attention_interval "
                     f"{c['full_attention_interval']} added")
    if edits:
        with open(path, "w") as f:
            json.dump(d, f, indent=2, sort_keys=True)
            f.write("\n")
    return edits


def load_hybrid(case_dir, dtype, c, experts_impl=MOE_EXPERTS_IMPL):
    """from_pretrained with eager attention (and, for MoE, the given experts
    implementation; None = HF's default).  Returns (model, loading info)."""
    kw = dict(dtype=dtype, attn_implementation="eager")
    if hybrid_is_moe(c) and experts_impl is not None:
        kw["experts_implementation"] = experts_impl
    m, info = hybrid_class(c).from_pretrained(case_dir, output_loading_info=True, **kw)
    assert not info.get("missing_keys") and not info.get("mismatched_keys"), info
    if hybrid_is_moe(c) and experts_impl is not None:
        assert m.config.get_text_config()._experts_implementation == experts_impl
    return m.eval(), {k: sorted(map(str, v)) for k, v in info.items()
                      if isinstance(v, (set, list))}


def check_loaded_hybrid(m, c, model_native, model32, dtype):
    """The loaded model: layer kinds, MoE/dense MLPs, rotary dim, tying and
    every parameter equal to the intended weights (model32 holds the
    bf16-rounded values of a bf16 case, except the tensors kept F32)."""
    tm = text_model(m)
    kinds = [l.block_type for l in tm.layers]
    assert kinds == hybrid_layer_types(c), kinds
    for i, l in enumerate(tm.layers):
        assert hasattr(l, "linear_attn") == (kinds[i] == LIN)
        assert type(l.mlp).__name__.endswith("SparseMoeBlock") == (
            i in hybrid_moe_layers(c)), (i, type(l.mlp).__name__)
    assert tm.rotary_emb.inv_freq.numel() * 2 == hybrid_rotary_dim(c)
    emb = tm.embed_tokens.weight
    assert (m.lm_head.weight.data_ptr() == emb.data_ptr()) == c["tie_word_embeddings"]
    ref = (model32 if dtype == torch.float32 else model_native).state_dict()
    got = m.state_dict()
    assert set(got) == set(ref), sorted(set(got) ^ set(ref))
    for k, want in ref.items():
        assert got[k].dtype == want.dtype and torch.equal(got[k], want), k


class GdnTrace:
    """Counts the calls of HF's GDN functions (chunked / recurrent delta rule,
    causal conv / conv update) in the case's modeling module while active,
    with the sequence length, whether an initial state was passed, and the
    decay exp(g) / beta values of the delta-rule calls."""

    def __init__(self, c):
        self.mod, self.calls, self.orig = hybrid_modeling_module(c), [], {}

    def __enter__(self):
        for n in GDN_FUNCS:
            f = self.orig[n] = getattr(self.mod, n)

            def w(*a, _n=n, _f=f, **k):
                x = a[0] if a else k.get("query", k.get("hidden_states"))
                if "delta_rule" in _n:
                    rec = dict(fn=_n, seq=int(x.shape[1]),
                               init=k.get("initial_state") is not None,
                               decay=k["g"].detach().float().exp().flatten(),
                               beta=k["beta"].detach().float().flatten())
                else:
                    rec = dict(fn=_n, seq=int(x.shape[-1]))
                self.calls.append(rec)
                return _f(*a, **k)
            setattr(self.mod, n, w)
        return self

    def __exit__(self, *a):
        for n, f in self.orig.items():
            setattr(self.mod, n, f)

    def take(self):
        out, self.calls = self.calls, []
        return out


def gdn_implementations(c):
    """Which implementation each HF GDN function dispatches to: the torch
    fallback unless flash-linear-attention / causal-conv1d are installed."""
    import importlib.util
    import inspect
    mod = hybrid_modeling_module(c)
    impl = {}
    for n in GDN_FUNCS:
        nl = inspect.getclosurevars(getattr(mod, n)).nonlocals
        new = nl.get("is_new_implementation")
        impl[n] = ("torch_fallback" if new is False else
                   f"external ({getattr(nl.get('implementation'), '__module__', '?')})")
    pk = {p: importlib.util.find_spec(p) is not None
          for p in ("fla", "causal_conv1d", "kernels")}
    return impl, pk


@torch.no_grad()
def hybrid_path_check(m, c, p, dec_ids, pl, dl):
    """Re-runs the recorded prompt + decode steps under GdnTrace: the prompt
    forward must take the chunked delta rule + causal_conv1d_fn with no
    initial state in every linear layer, every decode step the recurrent
    delta rule + causal_conv1d_update with the cached state (seq_len 1).  The
    logits must be bit-identical to the recorded ones.  Also compares the
    decode logits with one cache-less forward over prompt + decode_ids."""
    n_lin = hybrid_layer_types(c).count(LIN)
    L = p.numel()
    with GdnTrace(c) as tr:
        ids = p.view(1, -1).long()
        out = m(input_ids=ids, use_cache=True)
        pre = tr.take()
        past = out.past_key_values
        cache_layers = [type(l).__name__ for l in past.layers]
        pl2 = out.logits[0].float()
        assert sorted(x["fn"] for x in pre) == sorted(
            ["causal_conv1d_fn", "torch_chunk_gated_delta_rule"] * n_lin), pre
        # (the cache left-pads a prompt shorter than the conv kernel with
        # zeros before causal_conv1d_fn: same result as no left context)
        Kc = c["linear_conv_kernel_dim"]
        assert all(x["seq"] == (L if "delta" in x["fn"] else max(L, Kc))
                   for x in pre), [(x["fn"], x["seq"]) for x in pre]
        assert not any(x.get("init") for x in pre)
        dec = []
        for tok in dec_ids.tolist():
            out = m(input_ids=torch.tensor([[tok]]), past_key_values=past,
                    use_cache=True)
            past = out.past_key_values
            dec.append(out.logits[0, -1].float())
            calls = tr.take()
            assert sorted(x["fn"] for x in calls) == sorted(
                ["causal_conv1d_update", "torch_recurrent_gated_delta_rule"] * n_lin), calls
            assert all(x["seq"] == 1 for x in calls)
            assert all(x["init"] for x in calls if "delta" in x["fn"])
        dl2 = torch.stack(dec)
        full = m(input_ids=torch.cat([ids, dec_ids.view(1, -1).long()], 1),
                 use_cache=False).logits[0].float()
        full_calls = tr.take()
    assert torch.equal(pl2, pl) and torch.equal(dl2, dl), "non-deterministic"
    assert all(x["fn"] in ("causal_conv1d_fn", "torch_chunk_gated_delta_rule")
               for x in full_calls)
    decay = torch.cat([x["decay"] for x in pre if "delta" in x["fn"]])
    beta = torch.cat([x["beta"] for x in pre if "delta" in x["fn"]])
    qs = torch.quantile(decay.double(), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    return {
        "prompt_forward_calls": {"torch_chunk_gated_delta_rule": n_lin,
                                 "causal_conv1d_fn": n_lin,
                                 "initial_state": None},
        "decode_step_calls": {"torch_recurrent_gated_delta_rule": n_lin,
                              "causal_conv1d_update": n_lin,
                              "initial_state": "cached"},
        "cache_layers": cache_layers,
        "max_abs_diff_decode_vs_full_forward": float(
            (full[L:] - dl2).abs().max()),
        "max_abs_diff_prompt_vs_full_forward": float(
            (full[:L] - pl2).abs().max()),
        "gdn_decay_min_median_max": [float(x) for x in qs],
        "gdn_beta_min_max": [float(beta.min()), float(beta.max())],
    }


@torch.no_grad()
def last_token_routing_ok(m, m32, ids, k):
    """Routing of the LAST token of `ids` (every MoE layer, prompt forward)
    has a clear top-k boundary (and, with m32, routes the same there)."""
    def rows(model):
        with RouterTap(model) as tap:
            prompt_and_decode(model, ids, n=0)
        return [(li, rl[-1:], idx[-1:]) for li, rl, idx in tap.calls]
    a = rows(m)
    if routing_stats(a, k)[0] < ROUTER_MIN_GAP:
        return False
    if m32 is not None:
        b = rows(m32)
        if routing_stats(b, k)[0] < ROUTER_MIN_GAP:
            return False
        sa, sb = routing_sets(a), routing_sets(b)
        if not all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(sa, sb)):
            return False
    return True


@torch.no_grad()
def routed_prompt(m, m32, prefix, L, g, V, k):
    """Extends prefix to L tokens, drawing each token (seeded) until the new
    token's routing decisions are clear in every MoE layer.  With 4 MoE
    layers, 70 prompt tokens and ~1-5 % near-ties per decision, whole random
    prompts almost never pass, so they are built position by position.  The
    whole path is checked again afterwards (route_check)."""
    p = list(prefix)
    draws = 0
    while len(p) < L:
        for _ in range(HYBRID_MOE_MAX_TOKEN_TRIES):
            tok = int(torch.randint(0, V, (1,), generator=g))
            draws += 1
            if last_token_routing_ok(m, m32, torch.tensor(p + [tok], dtype=torch.int32), k):
                break
        else:
            raise RouterTie(f"position {len(p)}: no token without router near-ties")
        p.append(tok)
    return torch.tensor(p, dtype=torch.int32), draws


@torch.no_grad()
def gen_hybrid_case(c):
    """As gen_case: MoE cases redraw the seed (+SEED_REDRAW_STEP) only if a
    prompt cannot be made without router near-ties."""
    return with_seed_redraws(c, hybrid_is_moe(c), gen_hybrid_case_seed)


@torch.no_grad()
def gen_hybrid_case_seed(c, seed, rejected=None):
    name, dt = c["name"], c["dtype"]
    moe = hybrid_is_moe(c)
    dtype = DTYPES[dt]
    case_dir = os.path.join(REF_DIR, name)
    log(f"== {name}" + (f" (seed {seed})" if seed != c["seed"] else ""))
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)

    model32, param_kinds = build_hybrid_model(c, seed)
    if dt == "f32":
        model = model32
    else:
        import copy
        model = copy.deepcopy(model32).to(dtype)
        # the f32 model holds the bf16-rounded weights too (what the *_f32
        # reference computes with), except the tensors kept F32 on disk
        for k, v in model32.named_parameters():
            if not k.endswith(KEEP_F32_SUFFIXES) or not c["keep_f32"]:
                v.copy_(model.get_parameter(k).float())
        # .to() only updates the top-level config's dtype: text_config and
        # vision_config would still say float32 in config.json
        for sub in ("text_config", "vision_config"):
            if getattr(model.config, sub, None) is not None:
                getattr(model.config, sub).dtype = dtype
    model.generation_config = GenerationConfig(
        do_sample=False, bos_token_id=None, eos_token_id=None,
        pad_token_id=None)
    model.save_pretrained(case_dir, safe_serialization=True)
    with open(os.path.join(case_dir, "config.json")) as f:
        cfg_written = json.load(f)

    # Logits of the checkpoint exactly as save_pretrained wrote it, before
    # the generator's file and config.json edits (must not change them).
    pre, _ = load_hybrid(case_dir, dtype, c)
    file_facts = finish_hybrid_file(case_dir, c, model, model32, seed)
    config_edits = edit_hybrid_config(case_dir, c)

    m, load_info = load_hybrid(case_dir, dtype, c)
    assert m.dtype == dtype, m.dtype
    check_loaded_hybrid(m, c, model, model32, dtype)
    m32 = None
    if dt != "f32":
        m32, _ = load_hybrid(case_dir, torch.float32, c)
        check_loaded_hybrid(m32, c, model, model32, torch.float32)
    loaded_dtypes = {k: str(v.dtype).replace("torch.", "")
                     for k, v in m.state_dict().items()
                     if k.endswith(KEEP_F32_SUFFIXES)}
    a_log_loaded = sorted(set(loaded_dtypes.values()))
    del model, model32
    if moe:
        mdef, _ = load_hybrid(case_dir, dtype, c, None)
        default_impl = mdef.config.get_text_config()._experts_implementation
        top_k = c["num_experts_per_tok"]
    impl, pkgs = gdn_implementations(c)
    assert all(v == "torch_fallback" for v in impl.values()), impl

    g = torch.Generator().manual_seed(seed + 13)
    tensors = {}
    facts = {"greedy_matches_decode": True, "prompts": []}
    V = c["vocab_size"]
    for kp, L in enumerate(c["prompt_lens"]):
        router_rejects, token_draws, prefix = 0, 0, []
        max_tries = HYBRID_MOE_MAX_PROMPT_TRIES if moe else HYBRID_MAX_PROMPT_TRIES
        for attempt in range(1, max_tries + 1):
            if moe:
                p, nd = routed_prompt(m, m32, prefix, L, g, V, top_k)
                token_draws += nd
            else:
                p = torch.randint(0, V, (L,), generator=g,
                                  dtype=torch.int64).to(torch.int32)
            pl, fed, dl = prompt_and_decode(m, p, n=N_GREEDY)
            dec_logits = torch.cat([pl[-1:], dl[:-1]])
            ok = top_margin(dec_logits) >= MIN_MARGIN[dt]
            ok = ok and len(set(fed.tolist())) >= HYBRID_MIN_DISTINCT_GREEDY
            if ok and m32 is not None:
                pl32, _, dl32 = prompt_and_decode(m32, p, decode_ids=fed,
                                                  n=N_GREEDY)
                d32 = torch.cat([pl32[-1:], dl32[:-1]])
                ok = (top_margin(d32) >= MIN_MARGIN["f32"] and
                      torch.equal(d32.argmax(-1).to(torch.int32), fed))
            if ok and moe:
                ok, rinfo, rcalls = route_check(m, m32, p, fed, top_k)
                router_rejects += not ok
            if ok:
                break
            if moe:   # redraw the tail of the prompt (more of it each 10 tries)
                prefix = p[:max(0, L - 1 - attempt // 10)].tolist()
        else:
            if moe:
                raise RouterTie(f"p{kp}: no prompt of {max_tries} passes")
            raise RuntimeError(f"{name}: no clear prompt of length {L}")
        assert torch.isfinite(pl).all() and torch.isfinite(dl).all()
        pl_pre = prompt_and_decode(pre, p, n=0)[0]
        assert torch.equal(pl, pl_pre), f"{name}: file/config edit changed logits"

        dec_ids, decl = fed[:N_DECODE], dl[:N_DECODE]
        path = hybrid_path_check(m, c, p, dec_ids, pl, decl)
        with GdnTrace(c) as tr:
            gi = greedy(m, p)
        n_lin = hybrid_layer_types(c).count(LIN)
        gcalls = [x["fn"] for x in tr.calls]
        assert gcalls.count("torch_chunk_gated_delta_rule") == n_lin
        assert gcalls.count("torch_recurrent_gated_delta_rule") == n_lin * (N_GREEDY - 1)
        match = torch.equal(gi[:N_DECODE], dec_ids)
        if not match:
            log(f"  MISMATCH p{kp}: greedy {gi.tolist()} decode {dec_ids.tolist()}")
            facts["greedy_matches_decode"] = False
        tensors[f"p{kp}.prompt_ids"] = p.clone()
        tensors[f"p{kp}.prompt_logits"] = pl.contiguous()
        tensors[f"p{kp}.decode_ids"] = dec_ids.clone()
        tensors[f"p{kp}.decode_logits"] = decl.contiguous()
        tensors[f"p{kp}.greedy_ids"] = gi.contiguous()
        pf = {"k": kp, "prompt_len": L, "prompt_draws": attempt,
              "greedy_matches_decode": match,
              "greedy_matches_kv_loop_all": bool(torch.equal(gi, fed)),
              "distinct_greedy_ids": len(set(gi.tolist())),
              "min_top2_margin_greedy_path": top_margin(dec_logits),
              "logits_std": float(torch.cat([pl, decl]).std()),
              "logits_absmax": float(torch.cat([pl, decl]).abs().max()),
              **path,
              "generate_gdn_calls": {
                  "torch_chunk_gated_delta_rule": gcalls.count("torch_chunk_gated_delta_rule"),
                  "torch_recurrent_gated_delta_rule": gcalls.count("torch_recurrent_gated_delta_rule"),
                  "causal_conv1d_fn": gcalls.count("causal_conv1d_fn"),
                  "causal_conv1d_update": gcalls.count("causal_conv1d_update")}}
        if m32 is not None:
            tensors[f"p{kp}.prompt_logits_f32"] = pl32.contiguous()
            tensors[f"p{kp}.decode_logits_f32"] = dl32[:N_DECODE].contiguous()
            pf["min_top2_margin_greedy_path_f32"] = top_margin(d32)
            pf["max_abs_diff_native_vs_f32_prompt"] = float((pl32 - pl).abs().max())
            pf["max_abs_diff_native_vs_f32_decode"] = float(
                (dl32[:N_DECODE] - decl).abs().max())
            # (recorded, not selected for: see HYBRID_HALF_NOTE)
            pf["min_row_cosine_native_vs_f32"] = float(
                torch.nn.functional.cosine_similarity(
                    torch.cat([pl, decl]).double(),
                    torch.cat([pl32, dl32[:N_DECODE]]).double(), dim=-1).min())
            path32 = hybrid_path_check(m32, c, p, dec_ids, pl32,
                                       dl32[:N_DECODE].contiguous())
            pf["max_abs_diff_decode_vs_full_forward_f32"] = path32[
                "max_abs_diff_decode_vs_full_forward"]
        if moe:
            pf.update(rinfo)
            pf["prompt_draws_rejected_for_router_ties"] = router_rejects
            pf["prompt_token_draws"] = token_draws
            if kp == 1:
                li, _, idx = rcalls[0]
                assert li == hybrid_moe_layers(c)[0] and idx.shape == (L, top_k)
                tensors["p1.router_topk_ids"] = idx.to(torch.int32).contiguous()
            pld, _, dld = prompt_and_decode(mdef, p, decode_ids=dec_ids)
            pf["max_abs_diff_vs_default_experts_prompt"] = float((pld - pl).abs().max())
            pf["max_abs_diff_vs_default_experts_decode"] = float((dld - decl).abs().max())
            pf["greedy_ids_same_with_default_experts"] = bool(
                torch.equal(greedy(mdef, p), gi))
        facts["prompts"].append(pf)
        log(f"  p{kp}: len {L}, draws {attempt}, greedy {gi.tolist()}, "
            f"decode vs full {path['max_abs_diff_decode_vs_full_forward']:.2g}, "
            f"decay {[round(x, 3) for x in path['gdn_decay_min_median_max']]}"
            + (f", router gap {rinfo['min_router_topk_prob_gap']:.3g}, "
               f"{router_rejects} router rejects, {token_draws} token draws"
               if moe else ""))

    save_file(tensors, os.path.join(case_dir, "reference.safetensors"),
              metadata={"generator": "scripts/gen_reference.py; transformers "
                        f"{transformers.__version__}; torch {torch.__version__}"})
    back = load_file(os.path.join(case_dir, "reference.safetensors"))
    assert set(back) == set(tensors)
    for k in tensors:
        assert torch.equal(back[k], tensors[k]), k

    st = load_file(os.path.join(case_dir, "model.safetensors"))
    with open(os.path.join(case_dir, "config.json")) as f:
        cfg_json = json.load(f)
    tc_json = cfg_json.get("text_config", cfg_json)
    lt = hybrid_layer_types(c)
    nk, nv = c["linear_num_key_heads"], c["linear_num_value_heads"]
    dk, dv = c["linear_key_head_dim"], c["linear_value_head_dim"]
    text_prefix = "model.language_model." if hybrid_is_vl(c) else "model."
    meta = {
        "case": name, "dtype": dt, "note": c["note"], "seed": seed,
        "arch": c["arch"], "model_type": cfg_json["model_type"],
        "text_model_type": tc_json["model_type"],
        "architectures": cfg_json["architectures"],
        "checkpoint_layout": ("vl_nested: config in text_config (+ "
                              "vision_config), text weights under "
                              "model.language_model., vision under "
                              "model.visual." if hybrid_is_vl(c) else
                              "flat: config at top level, weights under model."),
        "text_weight_prefix": text_prefix,
        "vocab_size": c["vocab_size"], "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_hidden_layers": c["num_hidden_layers"],
        "layer_types": lt,
        "linear_layers": [i for i, t in enumerate(lt) if t == LIN],
        "full_attention_layers": [i for i, t in enumerate(lt) if t == FULL],
        "layer_types_in_config_json": "layer_types" in tc_json,
        "full_attention_interval_in_config_json": tc_json.get("full_attention_interval"),
        "layer_types_written_by_save_pretrained":
            "layer_types" in cfg_written.get("text_config", cfg_written),
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "head_dim": c["head_dim"],
        "gqa_ratio": c["num_attention_heads"] // c["num_key_value_heads"],
        "attn_output_gate": "q_proj [2*nH*hd, H], per head [q | gate]",
        "rope_theta": c["rope_theta"],
        "partial_rotary_factor": c["partial_rotary_factor"],
        "rotary_dim": hybrid_rotary_dim(c),
        "mrope_section": c["mrope_section"],
        "rope_config": tc_json.get("rope_parameters"),
        "linear_num_key_heads": nk, "linear_num_value_heads": nv,
        "linear_key_head_dim": dk, "linear_value_head_dim": dv,
        "linear_conv_kernel_dim": c["linear_conv_kernel_dim"],
        "gva_ratio": nv // nk, "key_dim": nk * dk, "value_dim": nv * dv,
        "conv_dim": 2 * nk * dk + nv * dv,
        "gdn_projection_layout": (
            "grouped: in_proj_qkvz [2*key_dim + 2*value_dim, H] and "
            "in_proj_ba [2*nv, H], grouped per key head"
            if c["arch"] == "qwen3_next" else
            "flat: in_proj_qkv [q|k|v], in_proj_z, in_proj_b, in_proj_a"),
        "tie_word_embeddings": c["tie_word_embeddings"],
        "tie_word_embeddings_config_json": {
            "top_level": cfg_json.get("tie_word_embeddings"),
            "text_config": (cfg_json["text_config"].get("tie_word_embeddings")
                            if "text_config" in cfg_json else None)},
        "rms_norm_eps": c["rms_norm_eps"],
        "max_position_embeddings": c["max_position_embeddings"],
        "vision_config": (dict(TINY_VISION, out_hidden_size=c["hidden_size"])
                          if hybrid_is_vl(c) else None),
        "config_json_edits": config_edits,
        "weights": {
            "linear_std": INITIALIZER_RANGE,
            "zero_centred_norm_weight": f"{NORM_STD} * randn (scale 1 + w)",
            "gated_norm_weight": f"1 + {NORM_STD} * randn",
            "A_log": f"log U{GDN_A_RANGE}",
            "dt_bias": f"{GDN_DT_BIAS_MEAN} + {GDN_DT_BIAS_STD} * randn",
            "conv1d": f"{GDN_CONV_STD} * randn",
            "router": ROUTER_STD if moe else None,
            "param_kinds": {k: sum(1 for x in param_kinds.values() if x == k)
                            for k in sorted(set(param_kinds.values()))}},
        **file_facts,
        "hf_load_dtype_of_f32_tensors": a_log_loaded if c["keep_f32"] else None,
        "loading_info": load_info,
    }
    if moe:
        meta.update({
            "num_experts": c["num_experts"],
            "num_experts_per_tok": c["num_experts_per_tok"],
            "moe_intermediate_size": c["moe_intermediate_size"],
            "shared_expert_intermediate_size": c["shared_expert_intermediate_size"],
            "shared_expert_gate": "sigmoid(mlp.shared_expert_gate.weight [1, H] x)",
            "norm_topk_prob": (c["norm_topk_prob"] if c["arch"] == "qwen3_next"
                               else "absent from config; always renormalised"),
            "decoder_sparse_step": c["decoder_sparse_step"],
            "mlp_only_layers": c["mlp_only_layers"],
            "moe_layers": hybrid_moe_layers(c),
            "dense_mlp_layers": [i for i in range(c["num_hidden_layers"])
                                 if i not in hybrid_moe_layers(c)],
            "expert_layout_in_file": c["expert_layout"],
            "router_weight_std": ROUTER_STD,
            "router_min_topk_prob_gap_required": ROUTER_MIN_GAP,
            "routing_native_must_match_f32": dt != "f32",
            "seed_requested": c["seed"],
            "seeds_rejected_for_router_ties": rejected or [],
            "experts_implementation": MOE_EXPERTS_IMPL,
            "default_experts_implementation": default_impl,
        })
    meta.update({
        "eos_token_id": None,
        "prompt_lens": list(c["prompt_lens"]), "min_margin": MIN_MARGIN[dt],
        "min_margin_f32": MIN_MARGIN["f32"] if dt != "f32" else None,
        "min_distinct_greedy_ids": HYBRID_MIN_DISTINCT_GREEDY,
        **({"native_vs_f32_note": HYBRID_HALF_NOTE} if dt != "f32" else {}),
        "n_decode": N_DECODE, "n_greedy": N_GREEDY,
        "attn_implementation": "eager", "device": "cpu",
        "gdn_implementation": impl,
        "optional_kernel_packages_installed": pkgs,
        "model_tensors": {k: f"{str(v.dtype).replace('torch.', '')} {list(v.shape)}"
                          for k, v in sorted(st.items())},
        "reference_tensors": sorted(tensors),
        "transformers": transformers.__version__, "torch": torch.__version__,
        **facts,
    })
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        f.write(compact_json(meta) + "\n")
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    log(f"  layout: {meta['checkpoint_layout'].split(':')[0]}, layer_types {lt}, "
        f"file dtypes {file_facts['file_dtypes']}, edits "
        f"{file_facts['file_edits'] + config_edits}")
    return meta


# ----------------------------------------------------------------------------
# bundled demo

DEMO_PROMPTS = ["Shall I compare thee", "Beautiful is better than",
                "Twinkle, twinkle,"]
DEMO_STOP = [151643, 151645]
DEMO_MAX_NEW = 200


@torch.no_grad()
def demo_greedy(model, ids):
    """Plain greedy loop with KV cache; stops after emitting a stop id."""
    out = model(input_ids=torch.tensor([ids]), use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1]
    gen, margin = [], float("inf")
    for _ in range(DEMO_MAX_NEW):
        tok = int(logits.float().argmax())
        margin = min(margin, top_margin(logits))
        gen.append(tok)
        if tok in DEMO_STOP:
            break
        out = model(input_ids=torch.tensor([[tok]]), past_key_values=past,
                    use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1]
    return gen, margin


@torch.no_grad()
def demo_generate(model, ids):
    gc = GenerationConfig(do_sample=False, max_new_tokens=DEMO_MAX_NEW,
                          eos_token_id=DEMO_STOP, pad_token_id=151643,
                          use_cache=True)
    t = torch.tensor([ids])
    out = model.generate(input_ids=t, attention_mask=torch.ones_like(t),
                         generation_config=gc)
    return out[0, len(ids):].tolist()


def compact_json(doc):
    """indent=2 JSON, but lists of numbers kept on one line."""
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    return re.sub(r"\[\s*(-?\d[\d\s,.eE+-]*?)\s*\]",
                  lambda mo: "[" + ", ".join(x.strip() for x in
                                             mo.group(1).split(",")) + "]",
                  text)


def gen_demo():
    tok = AutoTokenizer.from_pretrained(DEMO_CKPT)
    runs = {}
    for label, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        m = Qwen3ForCausalLM.from_pretrained(DEMO_CKPT, dtype=dtype,
                                             attn_implementation="eager").eval()
        assert m.dtype == dtype
        res = []
        for prompt in DEMO_PROMPTS:
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            gen, margin = demo_greedy(m, ids)
            gen2 = demo_generate(m, ids)
            if gen != gen2:
                log(f"  WARNING {label} {prompt!r}: manual loop and "
                    f"generate() differ")
            body = gen[:-1] if gen and gen[-1] in DEMO_STOP else gen
            res.append({
                "prompt": prompt, "prompt_ids": ids, "generated_ids": gen,
                "text": tok.decode(body, skip_special_tokens=False),
                "n_generated": len(gen),
                "stop_token": gen[-1] if gen and gen[-1] in DEMO_STOP else None,
                "generate_api_agrees": gen == gen2,
                "min_top2_logit_margin": round(margin, 4),
            })
            log(f"  {label} {prompt!r}: {len(gen)} tokens, "
                f"stop={res[-1]['stop_token']}")
        runs[label] = res
    agree = [a["generated_ids"] == b["generated_ids"]
             for a, b in zip(runs["f32"], runs["bf16"])]
    doc = {
        "checkpoint": "models/checkpoints/qwen3-demo",
        "generator": "scripts/gen_reference.py demo",
        "description": "Greedy decoding of the bundled demo checkpoint with "
                       "HuggingFace transformers (eager attention, CPU). "
                       "'results': bf16 weights upcast to float32, f32 "
                       "arithmetic (the runtime's reference). 'results_bf16': "
                       "the model run in bfloat16. Prompts are tokenized with "
                       "the checkpoint's tokenizer, no chat template, no BOS. "
                       "generated_ids includes the stop token if one was "
                       "produced; text is the decoding of generated_ids "
                       "without the stop token.",
        "stop_token_ids": DEMO_STOP,
        "max_new_tokens": DEMO_MAX_NEW,
        "results": runs["f32"],
        "results_bf16": runs["bf16"],
        "bf16_agrees_with_f32": agree,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    os.makedirs(os.path.dirname(DEMO_OUT), exist_ok=True)
    with open(DEMO_OUT, "w") as f:
        f.write(compact_json(doc) + "\n")
    log(f"  bf16 agrees with f32: {agree}")
    return doc


# ----------------------------------------------------------------------------
# Embedding case: a tiny Qwen3-Embedding-style checkpoint, published as a bare
# Qwen3Model (tensor names without "model.", no lm_head) with a tokenizer whose
# post-processor appends <|endoftext|> (TemplateProcessing, as Qwen3-Embedding's
# tokenizer.json).  The reference is what sentence-transformers computes with
# Qwen3-Embedding's config: HF Qwen3Model's last_hidden_state at the last token
# of tokenizer(text) (add_special_tokens=True, so <|endoftext|>), L2-normalised.

EMBEDDING_CASE = dict(
    _ROPE, name="embedding_qwen3", seed=1201, rope_style="native",
    vocab_size=320, max_position_embeddings=128, prompt_lens=None,
    note="tiny Qwen3-Embedding layout: bare Qwen3Model tensors, tokenizer "
         "post-processor appends <|endoftext|>")
EMBEDDING_TEXTS = [
    "Instruct: Given a web search query, retrieve relevant passages that "
    "answer the query\nQuery:What is the capital of China?",
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other.",
]
EMBEDDING_TOKENIZER_CORPUS = EMBEDDING_TEXTS + [
    "Shall I compare thee to a summer's day? Thou art more lovely and more "
    "temperate.",
    "Instruct: Given a question, retrieve passages that answer it\nQuery: "
    "explain gravity",
]


def make_embedding_tokenizer(path, vocab_size):
    """A byte-level BPE with Qwen's normalizer, pre-tokenizer and decoder,
    merges trained on a few sentences, <|endoftext|> as the last id, and
    Qwen3-Embedding's post-processor."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors, trainers
    qwen_split = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                  "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                  "\\s+(?!\\S)|\\s+")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(qwen_split), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(EMBEDDING_TOKENIZER_CORPUS, trainer)
    eot = tok.get_vocab_size()
    assert eot < vocab_size, eot
    tok.add_special_tokens(["<|endoftext|>"])
    assert tok.token_to_id("<|endoftext|>") == eot
    tok.post_processor = processors.TemplateProcessing(
        single="$A:0 <|endoftext|>:0", pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
        special_tokens=[("<|endoftext|>", eot)])
    tok.save(path)
    return eot


@torch.no_grad()
def gen_embedding_case():
    from transformers import PreTrainedTokenizerFast, Qwen3Model
    c = EMBEDDING_CASE
    case_dir = os.path.join(REF_DIR, c["name"])
    log(f"== {c['name']}")
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    causal = build_model(c, c["seed"])  # seeded weights, as the other cases
    base = causal.model                 # the Qwen3Model inside
    base.config.architectures = ["Qwen3Model"]
    base.save_pretrained(case_dir, safe_serialization=True)
    st = load_file(os.path.join(case_dir, "model.safetensors"))
    assert "embed_tokens.weight" in st and "norm.weight" in st, sorted(st)[:4]
    assert not any(k.startswith("model.") or k.startswith("lm_head") for k in st)
    eot = make_embedding_tokenizer(os.path.join(case_dir, "tokenizer.json"),
                                   c["vocab_size"])
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(case_dir, "tokenizer.json"))
    m = Qwen3Model.from_pretrained(case_dir, dtype=torch.float32,
                                   attn_implementation="eager").eval()
    tensors, ids_all = {}, []
    for k, text in enumerate(EMBEDDING_TEXTS):
        ids = tok(text)["input_ids"]  # add_special_tokens=True
        assert ids[-1] == eot, ids
        h = m(input_ids=torch.tensor([ids])).last_hidden_state[0]
        e = torch.nn.functional.normalize(h[-1:], p=2, dim=1)[0]
        tensors[f"t{k}.ids"] = torch.tensor(ids, dtype=torch.int32)
        tensors[f"t{k}.last_hidden_state"] = h.contiguous()
        tensors[f"t{k}.embedding"] = e.contiguous()
        ids_all.append(ids)
    save_file(tensors, os.path.join(case_dir, "reference.safetensors"),
              metadata={"generator": "scripts/gen_reference.py; transformers "
                        f"{transformers.__version__}; torch {torch.__version__}"})
    with open(os.path.join(case_dir, "texts.json"), "w") as f:
        json.dump(EMBEDDING_TEXTS, f, indent=1)
        f.write("\n")
    meta = {"case": c["name"], "note": c["note"], "seed": c["seed"],
            "model_class": "Qwen3Model", "texts": EMBEDDING_TEXTS,
            "token_ids": ids_all, "eot_id": eot,
            "pooling": "last token (the appended <|endoftext|>), L2-normalised",
            "model_tensors": sorted(st),
            "transformers": transformers.__version__, "torch": torch.__version__}
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        f.write(compact_json(meta) + "\n")
    for fn in os.listdir(case_dir):
        os.chmod(os.path.join(case_dir, fn), 0o644)
    log(f"  token counts {[len(i) for i in ids_all]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", nargs="?", default="all",
                    choices=["all", "cases", "demo", "embedding"])
    ap.add_argument("--only", action="append", default=[],
                    help="generate only this case (repeatable, or a "
                         "comma-separated list)")
    ap.add_argument("--hybrid", action="store_true",
                    help="generate the hybrid Gated-DeltaNet cases "
                         "(HYBRID_CASES: Qwen3.5, Qwen3-Next, Qwen3.5-MoE)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")
    bad = []
    only = [n for o in args.only for n in o.split(",") if n]
    if args.hybrid:
        only += [c["name"] for c in HYBRID_CASES]
    known = {c["name"] for c in CASES + HYBRID_CASES}
    unknown = sorted(set(only) - known)
    if unknown:
        ap.error(f"unknown case(s): {unknown}; known: {sorted(known)}")
    if args.what in ("all", "cases"):
        for c in CASES + HYBRID_CASES:
            if only and c["name"] not in only:
                continue
            meta = gen_hybrid_case(c) if is_hybrid(c) else gen_case(c)
            if not meta["greedy_matches_decode"]:
                bad.append(c["name"])
        if not only:
            keep = known | {EMBEDDING_CASE["name"]}
            for d in os.listdir(REF_DIR):
                p = os.path.join(REF_DIR, d)
                if os.path.isdir(p) and d not in keep:
                    log(f"  note: {p} is not a known case")
    if args.what in ("all", "embedding"):
        gen_embedding_case()
    if args.what in ("all", "demo"):
        gen_demo()
    if bad:
        log(f"greedy_ids != decode_ids in: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
