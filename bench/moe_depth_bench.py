#!/usr/bin/env python3
"""CPU decode benchmark of a MoE config too large for this machine's memory.

Qwen3-30B-A3B has 61 GB of bf16 weights; this VM has 24 GB. The script
compiles the real config at reduced depths (every layer at its real size,
only num_hidden_layers lowered), measures decode with seeded random weights
at each depth, and fits time per step = fixed + per_layer * layers, which
gives the full-depth estimate. The floor counts the bytes a decode step
reads: every non-expert weight, the experts actually touched (with random
routing a batch of B tokens touches E * (1 - (1 - k/E)^B) distinct experts
per layer in expectation) and the KV cache; the read bandwidth is measured
in the same run (bench/membw.c).

  bench/moe_depth_bench.py --config bench/configs/qwen3-30b-a3b.json --depths 2,4,8

llama.cpp on the same reduced model: `bench/llamacpp_peer.py checkpoint --layers N`
writes a seeded checkpoint of the first N layers, `gguf` converts it, and `compare`
runs both engines on it (docs/PERFORMANCE.md, "CPU: against llama.cpp").
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from cpu_bench import last_json, measure_bandwidth, run  # noqa: E402

DTYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2}


def step_bytes(cfg, layers, batch, context):
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    e, k, i = cfg["num_experts"], cfg["num_experts_per_tok"], cfg["moe_intermediate_size"]
    hd, nh, nkv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    attn = h * hd * (2 * nh + 2 * nkv) + 2 * hd + 2 * h
    touched = e * (1 - (1 - k / e) ** batch)
    per_layer = 2 * (attn + e * h + touched * 3 * i * h)
    head = 2 * v * h  # lm_head (the embedding reads one row per token)
    kv = batch * context * layers * 2 * nkv * hd * 4
    return layers * per_layer + head + kv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--config", default=os.path.join(ROOT, "bench/configs/qwen3-30b-a3b.json"))
    ap.add_argument("--depths", default="2,4,8")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--gen", type=int, default=16)
    ap.add_argument("--json", help="write raw results here")
    args = ap.parse_args()
    cfg = json.load(open(args.config))
    full = cfg["num_hidden_layers"]
    work = tempfile.mkdtemp(prefix="qwen-moe-bench-")
    bw_before = measure_bandwidth(args.threads)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename, "cpus": os.cpu_count(),
               "threads": args.threads, "read_gb_s_before": bw_before,
               "config": os.path.relpath(args.config, ROOT), "rows": []}
    for depth in [int(d) for d in args.depths.split(",")]:
        small = dict(cfg, num_hidden_layers=depth)
        path = os.path.join(work, f"config-{depth}.json")
        json.dump(small, open(path, "w"))
        artifact = os.path.join(work, f"d{depth}.qwenc")
        run([os.path.join(args.build, "bin/qwen-compile"), path, "-o", artifact])
        for batch in [int(b) for b in args.batches.split(",")]:
            out = last_json(run([os.path.join(args.build, "bin/qwen-run"), "bench", artifact, "--random-weights",
                                 "--threads", str(args.threads), "--prompt-len", str(args.prompt_len),
                                 "--gen", str(args.gen), "--batch", str(batch),
                                 "--max-context", str(args.prompt_len + args.gen + 16)]).stdout + "\n")
            results["rows"].append({"depth": depth, "batch": batch, "decode_ms_per_step": out["decode_ms_per_step"],
                                    "decode_tok_s": out["decode_tok_s"], "prefill_tok_s": out["prefill_tok_s"],
                                    "load_s": out["load_s"]})
    # Bandwidth varies on a VM: the best of before and after is the floor's.
    results["read_gb_s_after"] = measure_bandwidth(args.threads)
    results["read_gb_s"] = bw = max(bw_before, results["read_gb_s_after"])
    print(f"\n{results['config']} at reduced depth, {args.threads} threads, read bandwidth {bw:.1f} GB/s")
    print("batch | depth | ms/step | tok/s | floor tok/s | % floor")
    summary = []
    context = args.prompt_len + args.gen / 2
    for batch in [int(b) for b in args.batches.split(",")]:
        rows = [r for r in results["rows"] if r["batch"] == batch]
        for r in rows:
            floor = batch * bw * 1e9 / step_bytes(cfg, r["depth"], batch, context)
            r["floor_tok_s"] = floor
            print(f"{batch} | {r['depth']} | {r['decode_ms_per_step']:.1f} | {r['decode_tok_s']:.2f} | "
                  f"{floor:.2f} | {100 * r['decode_tok_s'] / floor:.0f}%")
        # least squares: ms = fixed + per_layer * depth
        n = len(rows)
        if n >= 2:
            xs = [r["depth"] for r in rows]
            ys = [r["decode_ms_per_step"] for r in rows]
            mx, my = sum(xs) / n, sum(ys) / n
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            fixed = my - slope * mx
            ms_full = fixed + slope * full
            tok_s = batch * 1000 / ms_full
            floor = batch * bw * 1e9 / step_bytes(cfg, full, batch, context)
            summary.append({"batch": batch, "per_layer_ms": slope, "fixed_ms": fixed, "full_depth": full,
                            "est_ms_per_step": ms_full, "est_tok_s": tok_s, "floor_tok_s": floor,
                            "est_pct_floor": 100 * tok_s / floor})
            print(f"{batch} | {full} (fit: {fixed:.1f} ms + {slope:.2f} ms/layer) | {ms_full:.1f} | {tok_s:.2f} | "
                  f"{floor:.2f} | {100 * tok_s / floor:.0f}%  <- estimate")
    results["full_depth_estimates"] = summary
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
