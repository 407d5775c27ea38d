#!/usr/bin/env python3
"""Throughput of HuggingFace transformers' Qwen3ForCausalLM: a benchmark peer
(CPU by default; --device cuda for the GPU benchmark, bench/gpu/device-run.sh).

Developer tool only (needs torch + transformers, see
scripts/requirements-reference.txt); never run in CI.

Builds a Qwen3ForCausalLM from a config preset (or --config path.json) with
seeded random weights, then measures at batch --batch:
  prefill: one forward over a --prompt-len random prompt  -> prefill_tok_s
  decode:  --gen greedy tokens, one per step, with the KV cache -> decode_tok_s
Token rates count all sequences of the batch (batch * tokens / seconds).
Prints one JSON line.

  .venv-ref/bin/python bench/hf_cpu_bench.py --preset demo
  .venv-ref/bin/python bench/hf_cpu_bench.py --preset qwen3-0.6b --threads 2
  .venv-ref/bin/python bench/hf_cpu_bench.py --config models/checkpoints/qwen3-demo/config.json --dtype f32
"""

import argparse
import json
import os
import time

import torch
import transformers
from transformers import (AutoConfig, AutoModelForCausalLM, Qwen3Config,
                          Qwen3ForCausalLM)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRESETS = {
    # models/checkpoints/qwen3-demo/config.json
    "demo": dict(vocab_size=151936, hidden_size=64, intermediate_size=192,
                 num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=32,
                 max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_theta=1000000.0, tie_word_embeddings=True),
    # Qwen/Qwen3-0.6B
    "qwen3-0.6b": dict(vocab_size=151936, hidden_size=1024,
                       intermediate_size=3072, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, max_position_embeddings=40960,
                       rms_norm_eps=1e-6, rope_theta=1000000.0,
                       tie_word_embeddings=True),
}
DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32, "f16": torch.float16}
CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size",
               "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "max_position_embeddings",
               "rms_norm_eps", "rope_theta", "tie_word_embeddings",
               "attention_bias")


def load_config_file(path):
    with open(path) as f:
        d = json.load(f)
    kw = {k: d[k] for k in CONFIG_KEYS if k in d}
    rp = d.get("rope_parameters")
    if isinstance(rp, dict) and "rope_theta" in rp:
        kw["rope_theta"] = rp["rope_theta"]
    return kw


def other_family_config(path):
    """The text config of a non-Qwen3 config.json (Qwen3.5, Qwen3-Next, MoE),
    for AutoModelForCausalLM; None for plain Qwen3."""
    with open(path) as f:
        d = json.load(f)
    if d.get("model_type") == "qwen3":
        return None
    text = d.get("text_config", d)
    text = {k: v for k, v in text.items() if k != "model_type"}
    model_type = d.get("text_config", {}).get("model_type") or d["model_type"]
    text.setdefault("tie_word_embeddings", d.get("tie_word_embeddings", False))
    return AutoConfig.for_model(model_type, **text)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    ap.add_argument("--config", help="config.json to use instead of a preset")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-len", default="128", help="tokens, or a list (512,4096): one line each")
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--batch", default="1", help="sequences, or a list (1,8,32): one line each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeat", type=int, default=2,
                    help="timed repetitions; the best is reported")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    if args.config:
        kw, cfg_name = load_config_file(args.config), os.path.relpath(
            os.path.abspath(args.config), ROOT)
    else:
        kw, cfg_name = dict(PRESETS[args.preset]), args.preset

    t0 = time.perf_counter()
    other = other_family_config(args.config) if args.config else None
    if other is not None:
        cfg = other
    else:
        cfg = Qwen3Config(hidden_act="silu", use_cache=True, use_sliding_window=False,
                          initializer_range=0.02, bos_token_id=None,
                          eos_token_id=None, **kw)
    torch.manual_seed(args.seed)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)   # build directly in the target dtype
    device = torch.device(args.device)
    try:
        with device:                 # and on the device (random init there is fast)
            cls = AutoModelForCausalLM if other is not None else Qwen3ForCausalLM
            model = cls.from_config(cfg, attn_implementation=args.attn) if other is not None \
                else cls._from_config(cfg, attn_implementation=args.attn)
    finally:
        torch.set_default_dtype(prev)
    model = model.to(device=device, dtype=dtype).eval()
    # Device work is asynchronous: wait for it before reading the clock.
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())

    for prompt_len in [int(x) for x in str(args.prompt_len).split(",")]:
        for batch in [int(x) for x in str(args.batch).split(",")]:
            measure(args, model, cfg, cfg_name, n_params, load_s, device, sync, batch, prompt_len)


def measure(args, model, cfg, cfg_name, n_params, load_s, device, sync, batch, prompt_len):
    g = torch.Generator().manual_seed(args.seed + 1)
    V = cfg.vocab_size
    prompt = torch.randint(0, V, (batch, prompt_len), generator=g).to(device)

    @torch.inference_mode()
    def prefill():
        out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)  # as generate() does
        return out.past_key_values, out.logits[:, -1]

    @torch.inference_mode()
    def decode(past, last):
        tok = last.argmax(-1, keepdim=True)
        for _ in range(args.gen):
            out = model(input_ids=tok, past_key_values=past, use_cache=True)
            past = out.past_key_values
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
        return tok

    # warm-up (small) so one-time allocations/kernels are not timed
    with torch.inference_mode():
        w = model(input_ids=prompt[:, :8], use_cache=True)
        model(input_ids=w.logits[:, -1].argmax(-1, keepdim=True),
              past_key_values=w.past_key_values, use_cache=True)

    best_pf, best_dec = float("inf"), float("inf")
    for _ in range(max(1, args.repeat)):
        sync()
        t0 = time.perf_counter()
        past, last = prefill()
        last.argmax(-1).cpu()  # the first token reaches the host: time to first token
        best_pf = min(best_pf, time.perf_counter() - t0)
        t0 = time.perf_counter()
        decode(past, last).cpu()
        best_dec = min(best_dec, time.perf_counter() - t0)

    print(json.dumps({
        "engine": "hf-transformers",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "config": cfg_name,
        "params": n_params,
        "dtype": args.dtype,
        "threads": args.threads,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "batch": batch,
        "prompt_len": prompt_len,
        "gen": args.gen,
        "attn": args.attn,
        "prefill_tok_s": round(batch * prompt_len / best_pf, 2),
        "decode_tok_s": round(batch * args.gen / best_dec, 2),
        "prefill_s": round(best_pf, 4),
        "decode_s": round(best_dec, 4),
        "load_s": round(load_s, 3),
        # 1-minute load average at the end: other processes on the machine
        # (builds, tests) slow the run down when this exceeds --threads
        "host_load1": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }), flush=True)


if __name__ == "__main__":
    main()
