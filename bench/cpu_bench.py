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
  bench/cpu_bench.py --build build --baseline-build /tmp/main-build --rounds 3 \
      --configs qwen3-0.6b --batches 1,4      # before / after, alternated, medians

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


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--baseline-build", help="a second build (e.g. of main) run alternately with --build "
                    "in every round, each compiling its own artifacts")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of every (build, config, batch); figures are medians, the read bandwidth "
                         "is measured before every round and after the last")
    ap.add_argument("--configs", default="demo,qwen3-0.6b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--hf-python", help="python with torch + transformers for the HF peer")
    ap.add_argument("--hf-dtypes", default="bf16,f32")
    ap.add_argument("--json", help="write raw results here")
    args = ap.parse_args()
    builds = [("ours", args.build)]
    if args.baseline_build:
        builds.append(("baseline", args.baseline_build))
    work = tempfile.mkdtemp(prefix="qwen-bench-")
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename,
               "cpus": os.cpu_count(), "threads": args.threads, "rounds": args.rounds,
               "builds": dict(builds)}
    configs = args.configs.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    artifacts, compile_s, manifests = {}, {}, {}
    for label, build in builds:
        for name in configs:
            artifact = os.path.join(work, f"{label}-{name}.qwenc")
            t0 = time.time()
            run([os.path.join(build, "bin", "qwen-compile"), CONFIGS[name]["source"], "-o", artifact])
            compile_s[label, name] = time.time() - t0
            artifacts[label, name] = artifact
            manifests[name] = json.load(open(os.path.join(artifact, "manifest.json")))
    # The VM's bandwidth varies from minute to minute (and with other load):
    # measure it around every round, and alternate the builds (the first one
    # rotating) so that the load falls on all of them.
    bandwidths = []
    samples = {}
    for r in range(args.rounds):
        bandwidths.append(measure_bandwidth(args.threads))
        order = builds[r % len(builds):] + builds[:r % len(builds)]
        for label, build in order:
            for name in configs:
                for batch in batches:
                    cmd = [os.path.join(build, "bin", "qwen-run"), "bench", artifacts[label, name],
                           "--threads", str(args.threads), "--prompt-len", str(args.prompt_len),
                           "--gen", str(args.gen), "--batch", str(batch),
                           "--max-context", str(args.prompt_len + args.gen + 16)]
                    if CONFIGS[name]["random"]:
                        cmd.append("--random-weights")
                    samples.setdefault((label, name, batch), []).append(last_json(run(cmd).stdout + "\n"))
    bandwidths.append(measure_bandwidth(args.threads))
    results["read_gb_s_samples"] = bandwidths
    results["read_gb_s_before"], results["read_gb_s_after"] = bandwidths[0], bandwidths[-1]
    # One round: the best of before / after as the floor's bandwidth (as
    # before); several: the median of all.
    bw = max(bandwidths) if args.rounds == 1 else median(bandwidths)
    results["read_gb_s"] = bw
    rows = []
    for label, _ in builds:
        for name in configs:
            manifest = manifests[name]
            for batch in batches:
                runs = samples[label, name, batch]
                # Bytes per decode step: weights once, plus each sequence's KV (mean
                # context) and linear-attention state (read and written).
                context = args.prompt_len + args.gen / 2
                step_bytes = weight_bytes(manifest) + batch * (context * kv_bytes_per_position(manifest) +
                                                               state_bytes_per_step(manifest))
                row = {"build": label, "config": name, "batch": batch, "compile_s": compile_s[label, name],
                       "load_s": median([o["load_s"] for o in runs]),
                       "prefill_tok_s": median([o["prefill_tok_s"] for o in runs]),
                       "decode_tok_s": median([o["decode_tok_s"] for o in runs]),
                       "decode_tok_s_samples": [o["decode_tok_s"] for o in runs],
                       "step_bytes": step_bytes}
                row["decode_gb_s"] = row["decode_tok_s"] / batch * step_bytes / 1e9
                row["decode_floor_tok_s"] = batch * bw * 1e9 / step_bytes
                row["decode_pct_floor"] = 100 * row["decode_tok_s"] / row["decode_floor_tok_s"]
                if args.hf_python and batch == 1 and label == "ours":
                    cfg = CONFIGS[name]
                    for dtype in args.hf_dtypes.split(","):
                        hf = last_json(run([args.hf_python, os.path.join(ROOT, "bench/hf_cpu_bench.py"),
                                            *cfg["hf"], "--dtype", dtype, "--threads", str(args.threads),
                                            "--prompt-len", str(args.prompt_len), "--gen", str(args.gen)]).stdout)
                        row["hf_" + dtype] = {"prefill_tok_s": hf["prefill_tok_s"], "decode_tok_s": hf["decode_tok_s"]}
                rows.append(row)
    results["rows"] = rows
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)

    print(f"\nCPU benchmark {results['date']}, {results['cpus']} cpus, {args.threads} threads, "
          f"read bandwidth {bw:.1f} GB/s ({min(bandwidths):.1f}-{max(bandwidths):.1f}), prompt "
          f"{args.prompt_len}, decode {args.gen} steps, {args.rounds} round(s)"
          + (", medians" if args.rounds > 1 else ""))
    header = ("build", "config", "batch", "compile s", "load s", "prefill tok/s", "decode tok/s",
              "decode GB/s", "floor tok/s", "% floor", "HF bf16 prefill/decode", "HF f32 prefill/decode")
    print(" | ".join(header))
    for r in rows:
        def hf(dtype):
            h = r.get("hf_" + dtype)
            return f"{h['prefill_tok_s']:.1f} / {h['decode_tok_s']:.2f}" if h else "-"
        print(" | ".join([r["build"], r["config"], str(r["batch"]), f"{r['compile_s']:.1f}",
                          f"{r['load_s']:.2f}", f"{r['prefill_tok_s']:.1f}", f"{r['decode_tok_s']:.2f}",
                          f"{r['decode_gb_s']:.2f}", f"{r['decode_floor_tok_s']:.2f}",
                          f"{r['decode_pct_floor']:.0f}%", hf("bf16"), hf("f32")]))


if __name__ == "__main__":
    main()
