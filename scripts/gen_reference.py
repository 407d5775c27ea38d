#!/usr/bin/env python3
"""Generate the HuggingFace-transformers reference data used by the tests.

Developer tool only: it needs torch + transformers (see
scripts/requirements-reference.txt) and is never run at build/test time or in
CI.  Its outputs are committed:

  test/data/reference/<case>/   tiny random Qwen3 (dense and MoE) checkpoints
                                + reference logits
  test/data/demo/expected.json  greedy output of the bundled demo checkpoint

Usage:
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install -r scripts/requirements-reference.txt
  .venv-ref/bin/python scripts/gen_reference.py            # everything
  .venv-ref/bin/python scripts/gen_reference.py cases      # only the tiny cases
  .venv-ref/bin/python scripts/gen_reference.py demo       # only expected.json
  .venv-ref/bin/python scripts/gen_reference.py cases --only f16_untied_bias

Everything is seeded and computed on CPU with the eager attention (and, for
Qwen3-MoE, eager experts) implementation, so re-running with the same
torch/transformers versions reproduces the files bit for bit (modulo the
versions recorded in meta.json).  See test/data/reference/README.md for the
format.  The Qwen3-MoE cases (MOE_CASES) store experts per-expert on disk, as
the released checkpoints do, and add p1.router_topk_ids; their prompts are
also filtered so that every routing decision has a clear top-k boundary.
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
    """Records (layer, router_logits, topk_indices) of every
    Qwen3MoeTopKRouter call while active."""

    def __init__(self, model):
        self.model, self.calls, self.handles = model, [], []

    def __enter__(self):
        for name, mod in self.model.named_modules():
            if type(mod).__name__ == "Qwen3MoeTopKRouter":
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
def prompt_and_decode(model, prompt_ids, decode_ids=None, n=N_DECODE):
    """Full forward over the prompt, then n single-token KV-cache steps.

    If decode_ids is None the fed tokens are chosen greedily from this model's
    own logits; otherwise the given tokens are fed (teacher forcing)."""
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
    ids = prompt_ids.view(1, -1).long()
    gc = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n,
                          eos_token_id=None, bos_token_id=None,
                          pad_token_id=0, use_cache=True)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         generation_config=gc)
    return out[0, ids.shape[1]:].to(torch.int32)


def rewrite_legacy_rope(case_dir, theta):
    path = os.path.join(case_dir, "config.json")
    with open(path) as f:
        d = json.load(f)
    d.pop("rope_parameters", None)
    d["rope_theta"] = theta
    d["rope_scaling"] = None
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
    if not is_moe(c):
        return gen_case_seed(c, c["seed"])
    rejected = []
    for t in range(MAX_SEED_TRIES):
        seed = c["seed"] + t * SEED_REDRAW_STEP
        try:
            return gen_case_seed(c, seed, rejected)
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
        rewrite_legacy_rope(case_dir, c["rope_theta"])
    if c.get("config_style", "native") == "hub":
        rewrite_hub_style(case_dir)

    # Everything recorded is computed from the checkpoint as loaded from disk.
    m = load(case_dir, DTYPES[dt], c, impl)
    assert m.dtype == DTYPES[dt], m.dtype
    assert abs(config_rope_theta(m.config) - c["rope_theta"]) < 1e-3
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
    for k, L in enumerate(PROMPT_LENS):
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
        "prompt_lens": list(PROMPT_LENS), "min_margin": MIN_MARGIN[dt],
        "min_margin_f32": MIN_MARGIN["f32"] if dt != "f32" else None, "n_decode": N_DECODE,
        "n_greedy": N_GREEDY,
        "attn_implementation": "eager", "device": "cpu",
        "model_tensors": {k: f"{str(v.dtype).replace('torch.', '')} {list(v.shape)}"
                          for k, v in sorted(st.items())},
        "reference_tensors": sorted(tensors),
        "transformers": transformers.__version__, "torch": torch.__version__,
        **facts,
    })
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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", nargs="?", default="all",
                    choices=["all", "cases", "demo"])
    ap.add_argument("--only", action="append", default=[],
                    help="generate only this case (repeatable)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")
    bad = []
    if args.what in ("all", "cases"):
        for c in CASES:
            if args.only and c["name"] not in args.only:
                continue
            meta = gen_case(c)
            if not meta["greedy_matches_decode"]:
                bad.append(c["name"])
        if not args.only:
            keep = {c["name"] for c in CASES}
            for d in os.listdir(REF_DIR):
                p = os.path.join(REF_DIR, d)
                if os.path.isdir(p) and d not in keep:
                    log(f"  note: {p} is not a known case")
    if args.what in ("all", "demo"):
        gen_demo()
    if bad:
        log(f"greedy_ids != decode_ids in: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
