#!/usr/bin/env python3
"""Prefix-cache benchmark: multi-turn chat with a shared system prompt, on the CPU.

For each config, compiles it (seeded random weights) and runs the same load
with the prefix cache and without it (`qwen-run bench --turns`): BATCH
conversations that open with the same SYSTEM_LEN-token system prompt; every
turn adds PROMPT_LEN new tokens to the conversation and generates GEN tokens;
turn k's prompt is everything so far. Prints the mean time to first token of
each turn, both ways, and the prefix cache's hit rate.

  bench/prefix_cache_bench.py --build build --configs qwen3-0.6b,qwen3.5-0.8b \
      --system-len 1024 --turns 3

Expected: a cached turn's time to first token follows its new tokens (the
last turn's answer and message), not its whole prompt. Stdlib only.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    "qwen3-0.6b": os.path.join(ROOT, "bench/configs/qwen3-0.6b.json"),
    "qwen3.5-0.8b": os.path.join(ROOT, "bench/configs/qwen3.5-0.8b.json"),
    "qwen3.5-2b": os.path.join(ROOT, "bench/configs/qwen3.5-2b.json"),
}


def run(cmd):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output:\n" + text)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--configs", default="qwen3-0.6b,qwen3.5-0.8b")
    ap.add_argument("--system-len", type=int, default=1024)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--gen", type=int, default=16)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", help="write every raw figure to this file")
    args = ap.parse_args()

    bindir = os.path.join(args.build, "bin")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            if name not in CONFIGS:
                sys.exit(f"unknown config {name}; known: {', '.join(CONFIGS)}")
            artifact = os.path.join(tmp, name + ".qwenc")
            run([os.path.join(bindir, "qwen-compile"), CONFIGS[name], "-o", artifact])
            for cache in (True, False):
                cmd = [os.path.join(bindir, "qwen-run"), "bench", artifact, "--random-weights", "--threads",
                       str(args.threads), "--turns", str(args.turns), "--system-len", str(args.system_len),
                       "--prompt-len", str(args.prompt_len), "--gen", str(args.gen), "--batch", str(args.batch)]
                if not cache:
                    cmd.append("--no-prefix-cache")
                r = last_json(run(cmd))
                r["config"] = name
                r["load_average"] = os.getloadavg()[0]
                results.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
          f"{os.cpu_count()} hardware threads")
    print(f"system prompt {args.system_len} tokens, {args.prompt_len} new tokens and {args.gen} generated per turn, "
          f"{args.batch} conversation(s)\n")
    print("| config | turn | prompt tokens | reused | TTFT cached (s) | TTFT uncached (s) | speedup |")
    print("|---|---|---|---|---|---|---|")
    by = {(r["config"], r["prefix_cache"]): r for r in results}
    for name in args.configs.split(","):
        on, off = by[(name, True)], by[(name, False)]
        for a, b in zip(on["turns"], off["turns"]):
            batch = on["batch"]
            print(f"| {name} | {a['turn']} | {a['prompt_tokens'] // batch} | {a['cached_tokens'] // batch} | "
                  f"{a['ttft_s']:.2f} | {b['ttft_s']:.2f} | {b['ttft_s'] / max(a['ttft_s'], 1e-9):.1f}x |")
        print(f"| {name} | all | | hit rate {100 * on['hit_rate']:.1f}% | | | |")


if __name__ == "__main__":
    main()
