#!/usr/bin/env python3
"""Generate the HuggingFace-transformers reference data used by the tests.

Developer tool only: it needs torch + transformers (see
scripts/requirements-reference.txt) and is never run at build/test time or in
CI.  Its outputs are committed:

  test/data/reference/<case>/   tiny random Qwen3 checkpoints + reference logits
  test/data/demo/expected.json  greedy output of the bundled demo checkpoint

Usage:
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install -r scripts/requirements-reference.txt
  .venv-ref/bin/python scripts/gen_reference.py            # everything
  .venv-ref/bin/python scripts/gen_reference.py cases      # only the tiny cases
  .venv-ref/bin/python scripts/gen_reference.py demo       # only expected.json
  .venv-ref/bin/python scripts/gen_reference.py cases --only f16_untied_bias

Everything is seeded and computed on CPU with the eager attention
implementation, so re-running with the same torch/transformers versions
reproduces the files bit for bit (modulo the versions recorded in meta.json).
See test/data/reference/README.md for the format.
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
                          Qwen3ForCausalLM)

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

INITIALIZER_RANGE = 0.15
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
    cfg = Qwen3Config(**kw)
    cfg.architectures = ["Qwen3ForCausalLM"]
    return cfg


def config_rope_theta(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(cfg.rope_theta)


@torch.no_grad()
def build_model(c):
    cfg = make_config(c)
    torch.manual_seed(c["seed"])
    model = Qwen3ForCausalLM._from_config(cfg, attn_implementation="eager")
    g = torch.Generator().manual_seed(c["seed"] + 7)
    std = INITIALIZER_RANGE
    # Re-draw every parameter explicitly from our own generator, so the
    # weights do not depend on how a transformers version initialises.
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):  # input/post_attention/q/k/final norm
            p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g))
        elif name.endswith(".bias"):
            p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
        else:
            p.copy_(std * torch.randn(p.shape, generator=g))
    assert abs(config_rope_theta(cfg) - c["rope_theta"]) < 1e-6 * c["rope_theta"]
    return model.to(DTYPES[c["dtype"]]).eval()


def load(case_dir, dtype):
    m = Qwen3ForCausalLM.from_pretrained(case_dir, dtype=dtype,
                                         attn_implementation="eager")
    return m.eval()


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
    name, dt = c["name"], c["dtype"]
    case_dir = os.path.join(REF_DIR, name)
    log(f"== {name}")
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)

    model = build_model(c)
    model.generation_config = GenerationConfig(
        do_sample=False, bos_token_id=None, eos_token_id=None,
        pad_token_id=None)
    model.save_pretrained(case_dir, safe_serialization=True)

    # Logits of the checkpoint exactly as save_pretrained wrote it, before
    # any config.json edit.  (Not the in-memory model: model.to(bf16) also
    # casts the rotary inv_freq buffer, which from_pretrained keeps in f32.)
    pre = load(case_dir, DTYPES[dt])
    del model
    if c["rope_style"] == "legacy":
        rewrite_legacy_rope(case_dir, c["rope_theta"])

    # Everything recorded is computed from the checkpoint as loaded from disk.
    m = load(case_dir, DTYPES[dt])
    assert m.dtype == DTYPES[dt], m.dtype
    assert abs(config_rope_theta(m.config) - c["rope_theta"]) < 1e-3
    m32 = None
    if dt != "f32":
        m32 = load(case_dir, torch.float32)
        assert m32.dtype == torch.float32

    g = torch.Generator().manual_seed(c["seed"] + 13)
    tensors = {}
    facts = {"greedy_matches_decode": True, "prompts": []}
    for k, L in enumerate(PROMPT_LENS):
        # Draw random prompts (seeded) until every greedy decision of the
        # recorded path (the first generated token and the N_GREEDY-1 after
        # it) is clear: top-2 margin >= MIN_MARGIN[dt] in the native logits
        # and, for bf16/f16, >= MIN_MARGIN["f32"] in the f32-upcast logits
        # with the same argmax.  Runtimes that differ from HF by rounding
        # then still reproduce greedy_ids exactly.
        for attempt in range(1, MAX_PROMPT_TRIES + 1):
            p = torch.randint(0, c["vocab_size"], (L,), generator=g,
                              dtype=torch.int64).to(torch.int32)
            pl, fed, dl = prompt_and_decode(m, p, n=N_GREEDY)
            dec_logits = torch.cat([pl[-1:], dl[:-1]])  # chose fed[0..G-1]
            ok = top_margin(dec_logits) >= MIN_MARGIN[dt]
            if ok and m32 is not None:
                pl32, _, dl32 = prompt_and_decode(m32, p, decode_ids=fed,
                                                  n=N_GREEDY)
                d32 = torch.cat([pl32[-1:], dl32[:-1]])
                ok = (top_margin(d32) >= MIN_MARGIN["f32"] and
                      torch.equal(d32.argmax(-1).to(torch.int32), fed))
            if ok:
                break
        else:
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
        facts["prompts"].append(pf)
        log(f"  p{k}: len {L}, draws {attempt}, greedy {gi.tolist()}")

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
        "case": name, "dtype": dt, "note": c["note"], "seed": c["seed"],
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
    }
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        f.write(compact_json(meta) + "\n")
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
