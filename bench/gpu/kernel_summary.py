#!/usr/bin/env python3
"""Summarizes an Nsight Compute CSV of a qwen-run bench (bench/gpu/profile.sh):
splits the kernel sequence into steps at each step's first kernel (the
embedding), names each cuBLASLt kernel after the GEMM entry launched before it (a GEMM
may run two: the product and a split-K reduction),
and prints, for the prefill and for the mean decode step, the time by kernel
and by kind (GEMM, pack, attention, rows, ...), largest first. Nsight Compute
times each kernel alone, serialized and with the caches flushed first: the sums
overstate a step's time (small kernels most); use them for shares, and
qwen-run bench for the step time."""
import argparse
import collections
import csv
import io
import re
import sys


def read_kernels(path):
    text = open(path, errors="replace").read()
    start = text.find('"ID","Process ID"')
    if start < 0:
        sys.exit(f"{path}: no Nsight Compute CSV header")
    kernels = []
    for row in csv.DictReader(io.StringIO(text[start:])):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        kernels.append((row["Kernel Name"], float(row["Metric Value"].replace(",", "")) * 1e-9))  # ns -> s
    return kernels


def kind(name):
    if name.startswith("gemm "):
        return "gemm (cuBLASLt)"
    base = re.sub(r"^qk\d+_", "", name)
    return base.split("_")[-1] if base.endswith("pack") else base


def steps_of(kernels):
    steps, current, last_entry = [], [], "?"
    for name, seconds in kernels:
        short = name.split("(")[0]
        if short.endswith("embedding") and current:
            steps.append(current)
            current = []
        if short.startswith("qk"):
            last_entry = short
            current.append((short, seconds))
        else:  # a library kernel: the GEMM of the entry launched before it
            entry = last_entry.removesuffix("_pack")
            current.append((f"gemm {entry}" if entry.endswith("matmul") else f"gemm after {entry}", seconds))
    if current:
        steps.append(current)
    return steps


def report(title, steps):
    n = len(steps)
    total = sum(s for step in steps for _, s in step) / n
    launches = sum(len(step) for step in steps) / n
    print(f"\n{title}: {total * 1e6:.1f} us of kernel time per step, {launches:.0f} kernels "
          f"(mean of {n} step{'s' if n > 1 else ''})")
    by_kind = collections.Counter()
    by_name = collections.Counter()
    count = collections.Counter()
    for step in steps:
        for name, seconds in step:
            by_kind[kind(name)] += seconds / n
            by_name[name] += seconds / n
            count[name] += 1 / n
    print("| kind | us / step | share |")
    print("|---|---|---|")
    for k, s in by_kind.most_common():
        print(f"| {k} | {s * 1e6:.1f} | {100 * s / total:.0f}% |")
    print("| kernel | launches / step | us / step | us / launch |")
    print("|---|---|---|---|")
    for k, s in by_name.most_common(12):
        print(f"| {k} | {count[k]:.0f} | {s * 1e6:.1f} | {s * 1e6 / count[k]:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--steps", type=int, default=4, help="decode steps the bench ran")
    args = ap.parse_args()
    steps = steps_of(read_kernels(args.csv))
    if len(steps) < 2:
        sys.exit(f"{args.csv}: found {len(steps)} steps")
    # The bench's last run: a prefill, then its decode steps.
    decode = steps[-args.steps:]
    prefill = steps[-args.steps - 1]
    report("prefill", [prefill])
    report("decode", decode)


if __name__ == "__main__":
    main()
