#!/usr/bin/env python3
"""CPU benchmark: qwen-run against the memory-bandwidth floor and HF transformers.

Everything is measured in the same run on the same machine:
  * read bandwidth (bench/membw.c, all threads) -> the decode floor:
    bytes read per decoded token = every weight once (the lm_head / tied
    embedding included) + the KV cache of the context;
  * qwen-compile time, qwen-run load time, prefill and decode tokens/s
    (bundled demo checkpoint with its real weights; real Qwen3 / Qwen3.5
    configs with seeded random weights, `qwen-run bench --random-weights`);
  * optionally HF transformers (PyTorch eager/SDPA on CPU) on the same config
    with seeded random weights, through bench/hf_cpu_bench.py, when a Python
    with torch + transformers is given (--hf-python).

  bench/cpu_bench.py --build build --hf-python .venv-ref/bin/python

Prints a table last; --json FILE writes every raw figure. Stdlib only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    "demo": {"source": os.path.join(ROOT, "models/checkpoints/qwen3-demo"), "random": False,
             "hf": ["--preset", "demo"]},
    "qwen3-0.6b": {"source": os.path.join(ROOT, "bench/configs/qwen3-0.6b.json"), "random": True,
                   "hf": ["--preset", "qwen3-0.6b"]},
    # The same with block-wise FP8 linear weights (Qwen3-*-FP8's
    # quantization_config: 128 x 128 blocks; embeddings and lm_head bf16).
    "qwen3-0.6b-fp8": {"source": os.path.join(ROOT, "bench/configs/qwen3-0.6b-fp8.json"), "random": True,
                       "hf": ["--preset", "qwen3-0.6b"]},
    # Qwen3.5 hybrids (sizes of qwen-models.md 4.2; the smaller ones are not
    # all confirmed from the official files)
    "qwen3.5-0.8b": {"source": os.path.join(ROOT, "bench/configs/qwen3.5-0.8b.json"), "random": True,
                     "hf": ["--config", os.path.join(ROOT, "bench/configs/qwen3.5-0.8b.json")]},
    "qwen3.5-2b": {"source": os.path.join(ROOT, "bench/configs/qwen3.5-2b.json"), "random": True,
                   "hf": ["--config", os.path.join(ROOT, "bench/configs/qwen3.5-2b.json")]},
}
DTYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "i32": 4, "f8e4m3": 1}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output:\n" + text)


def measure_bandwidth(threads):
    exe = os.path.join(tempfile.gettempdir(), "qwen-membw")
    run(["cc", "-O2", "-mavx2", "-fopenmp", os.path.join(ROOT, "bench/membw.c"), "-o", exe])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return last_json(run([exe], env=env).stdout)["read_gb_s"]


def weight_bytes(manifest):
    total = 0
    for w in manifest["weights"]:
        n = 1
        for d in w["shape"]:
            n *= d
        total += n * DTYPE_BYTES[w["dtype"]]
    return total


def state_bytes_per_step(manifest):
    """Linear-attention state one sequence reads and writes per decode step."""
    st = manifest.get("linear_state")
    if not st:
        return 0
    conv = st["num_layers"] * st["conv_window"] * st["conv_channels"] * 4
    recurrent = st["num_layers"] * st["num_heads"] * st["key_dim"] * st["value_dim"] * 4
    return 2 * (conv + recurrent)


def kv_bytes_per_position(manifest):
    kv = manifest["kv_cache"]
    return 2 * kv["num_layers"] * kv["num_kv_heads"] * kv["head_dim"] * DTYPE_BYTES[kv["dtype"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--configs", default="demo,qwen3-0.6b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--hf-python", help="python with torch + transformers for the HF peer")
    ap.add_argument("--hf-dtypes", default="bf16,f32")
    ap.add_argument("--json", help="write raw results here")
    args = ap.parse_args()
    bin_dir = os.path.join(args.build, "bin")
    work = tempfile.mkdtemp(prefix="qwen-bench-")
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename,
               "cpus": os.cpu_count(), "threads": args.threads}
    # The VM's bandwidth varies from minute to minute: measure before and
    # after the runs and take the best as the floor's bandwidth.
    results["read_gb_s_before"] = measure_bandwidth(args.threads)
    rows = []
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        artifact = os.path.join(work, name + ".qwenc")
        t0 = time.time()
        run([os.path.join(bin_dir, "qwen-compile"), cfg["source"], "-o", artifact])
        compile_s = time.time() - t0
        manifest = json.load(open(os.path.join(artifact, "manifest.json")))
        for batch in [int(b) for b in args.batches.split(",")]:
            cmd = [os.path.join(bin_dir, "qwen-run"), "bench", artifact, "--threads", str(args.threads),
                   "--prompt-len", str(args.prompt_len), "--gen", str(args.gen), "--batch", str(batch),
                   "--max-context", str(args.prompt_len + args.gen + 16)]
            if cfg["random"]:
                cmd.append("--random-weights")
            ours = last_json(run(cmd).stdout + "\n")
            # Bytes per decode step: weights once, plus each sequence's KV (mean
            # context) and linear-attention state (read and written).
            context = args.prompt_len + args.gen / 2
            step_bytes = weight_bytes(manifest) + batch * (context * kv_bytes_per_position(manifest) +
                                                           state_bytes_per_step(manifest))
            row = {"config": name, "batch": batch, "compile_s": compile_s, "load_s": ours["load_s"],
                   "prefill_tok_s": ours["prefill_tok_s"], "decode_tok_s": ours["decode_tok_s"],
                   "step_bytes": step_bytes}
            if args.hf_python and batch == 1:
                for dtype in args.hf_dtypes.split(","):
                    hf = last_json(run([args.hf_python, os.path.join(ROOT, "bench/hf_cpu_bench.py"),
                                        *cfg["hf"], "--dtype", dtype, "--threads", str(args.threads),
                                        "--prompt-len", str(args.prompt_len), "--gen", str(args.gen)]).stdout)
                    row["hf_" + dtype] = {"prefill_tok_s": hf["prefill_tok_s"], "decode_tok_s": hf["decode_tok_s"]}
            rows.append(row)
    results["read_gb_s_after"] = measure_bandwidth(args.threads)
    results["read_gb_s"] = bw = max(results["read_gb_s_before"], results["read_gb_s_after"])
    for row in rows:
        row["decode_floor_tok_s"] = row["batch"] * bw * 1e9 / row["step_bytes"]
        row["decode_pct_floor"] = 100 * row["decode_tok_s"] / row["decode_floor_tok_s"]
    results["rows"] = rows
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)

    print(f"\nCPU benchmark {results['date']}, {results['cpus']} cpus, {args.threads} threads, "
          f"read bandwidth {bw:.1f} GB/s, prompt {args.prompt_len}, decode {args.gen} steps")
    header = ("config", "batch", "compile s", "load s", "prefill tok/s", "decode tok/s",
              "floor tok/s", "% floor", "HF bf16 prefill/decode", "HF f32 prefill/decode")
    print(" | ".join(header))
    for r in rows:
        def hf(dtype):
            h = r.get("hf_" + dtype)
            return f"{h['prefill_tok_s']:.1f} / {h['decode_tok_s']:.2f}" if h else "-"
        print(" | ".join([r["config"], str(r["batch"]), f"{r['compile_s']:.1f}", f"{r['load_s']:.2f}",
                          f"{r['prefill_tok_s']:.1f}", f"{r['decode_tok_s']:.2f}",
                          f"{r['decode_floor_tok_s']:.2f}", f"{r['decode_pct_floor']:.0f}%",
                          hf("bf16"), hf("f32")]))


if __name__ == "__main__":
    main()
