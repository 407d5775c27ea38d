#!/usr/bin/env python3
"""The GPU benchmark table from the files device-run.sh writes under OUT:
floors.json (measured copy bandwidth and bf16 GEMM rate), bench-NAME.jsonl
(qwen-run bench lines) and hf-NAME.jsonl (bench/hf_cpu_bench.py --device cuda).

  decode:  floor tok/s = batch / ((weight bytes read + KV bytes read) / bandwidth)
           weights: every weight once per step (the embedding table only when
           it is also the lm_head); KV: each sequence's keys and values at its
           mean context (prompt + gen/2), in the artifact's KV dtype.
  prefill: ceiling tok/s = GEMM rate / FLOPs per token, FLOPs per token =
           2 x matmul parameters (the embedding table excluded; the lm_head
           runs for one row per sequence) + causal attention 4 x layers x
           heads x head_dim x mean context (prompt/2).
A run that decodes gives a decode row, a prefill-only run (--gen 0) a prefill
row. Prints the table (markdown) and writes OUT/table.md. Stdlib only."""
import glob
import json
import os
import sys


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def main(out):
    floors = json.load(open(os.path.join(out, "floors.json")))
    bw, peak = floors["copy_bytes_per_s"], floors["bf16_gemm_flops_per_s"]
    rows = ["| model | step | qwen-run tok/s | bound tok/s | % of bound | HF tok/s | x HF |",
            "|---|---|---|---|---|---|---|"]
    for path in sorted(glob.glob(os.path.join(out, "bench-*.jsonl"))):
        name = os.path.basename(path)[len("bench-"):-len(".jsonl")]
        hf = {}
        # NAME-mma (tensor-core attention tiles) compares with NAME's HF run.
        hf_path = os.path.join(out, "hf-%s.jsonl" % (name[:-4] if name.endswith("-mma") else name))
        if os.path.exists(hf_path):
            for h in lines(hf_path):  # decode from runs that decode, prefill preferably from prefill-only runs
                if h["gen"] > 0:
                    hf[(h["batch"], h["prompt_len"], "decode")] = h["decode_tok_s"]
                    hf.setdefault((h["batch"], h["prompt_len"], "prefill"), h["prefill_tok_s"])
                else:
                    hf[(h["batch"], h["prompt_len"], "prefill")] = h["prefill_tok_s"]
        for r in lines(path):
            m = r["model"]
            L, kvh, hd, H = m["num_layers"], m["num_kv_heads"], m["head_dim"], m["num_attention_heads"]
            # FP8 artifacts: 1-byte matmul weights (plus their block scales,
            # in weight_bytes); the embedding table stays 16-bit.
            fp8 = (m.get("weight_quantization") or {}).get("method") == "fp8"
            wbytes = 1 if fp8 else 2 if m["weight_dtype"] in ("bf16", "f16") else 4
            embed = m["vocab_size"] * m["hidden_size"] * (2 if fp8 else wbytes)
            kv_bytes = {"f32": 4, "bf16": 2, "f16": 2}[r["kv_dtype"]]
            B, P, G = r["batch"], r["prompt_len"], r["gen"]
            if r.get("cuda_programmatic_launch") is False:
                name_shown = "%s (no PDL)" % name
            elif r.get("cuda_decode_kernels", "auto") != "auto":
                name_shown = "%s (decode kernels %s)" % (name, r["cuda_decode_kernels"])
            elif r.get("cuda_decode_splits", 0):
                name_shown = "%s (decode splits %d)" % (name, r["cuda_decode_splits"])
            else:
                name_shown = name
            if G > 0:
                weights_read = r["weight_bytes"] - (0 if m["tie_word_embeddings"] else embed)
                kv_read = B * (P + G / 2) * L * kvh * hd * 2 * kv_bytes
                floor = B / ((weights_read + kv_read) / bw)
                got = r["decode_tok_s"]
                peer = hf.get((B, P, "decode"))
                rows.append("| %s | decode batch %d (ctx %d+%d) | %.1f | %.1f | %.0f%% | %s | %s |" % (
                    name_shown, B, P, G, got, floor, 100 * got / floor, "%.1f" % peer if peer else "-",
                    "%.2f" % (got / peer) if peer else "-"))
                continue  # prefill rows come from the prefill-only runs
            matmul_params = r["weight_bytes"] / wbytes - m["vocab_size"] * m["hidden_size"]
            flops = 2 * matmul_params + 4 * L * H * hd * P / 2
            ceiling = peak / flops
            got = r["prefill_tok_s"]
            peer = hf.get((B, P, "prefill"))
            rows.append("| %s | prefill %d x %d (TTFT %.1f ms at batch 1) | %.0f | %.0f | %.0f%% | %s | %s |" % (
                name, B, P, 1e3 * r["prefill_s"], got, ceiling, 100 * got / ceiling,
                "%.0f" % peer if peer else "-", "%.2f" % (got / peer) if peer else "-")
                if B == 1 else "| %s | prefill %d x %d | %.0f | %.0f | %.0f%% | %s | %s |" % (
                name, B, P, got, ceiling, 100 * got / ceiling, "%.0f" % peer if peer else "-",
                "%.2f" % (got / peer) if peer else "-"))
    text = "\n".join(["%s: copy %.0f GB/s, bf16 GEMM %.0f TFLOP/s (measured in this run)" % (
        floors["device"], bw / 1e9, peak / 1e12), ""] + rows)
    open(os.path.join(out, "table.md"), "w").write(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1])
