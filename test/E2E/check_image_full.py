#!/usr/bin/env python3
"""Compares `qwen-run logits --prompt --image` with HF's whole model on the
same text and image files (scripts/gen_image_full_reference.py; stdlib only).

  check_image_full.py OURS.safetensors REFERENCE.safetensors PREFIX [MAX_ABS]

prompt_ids must equal HF's processor's input_ids and the greedy decode_ids
HF's; the logits' first columns (the tiny vocabulary the reference keeps)
within MAX_ABS (default 1e-3, the f32 reference tolerance), every later
column exactly 0 (its embedding rows are zero). Prints the max |diff| and
PASS, or FAIL with the first problem."""
import sys

from check_vision import read_safetensors


def main():
    ours, ref = read_safetensors(sys.argv[1]), read_safetensors(sys.argv[2])
    prefix, tol = sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 1e-3
    problems, worst = [], 0.0
    for name in ("prompt_ids", "decode_ids"):
        if ours[name][1] != ref[prefix + name][1]:
            problems.append(f"{name}: {ours[name][1]} != HF's {ref[prefix + name][1]}")
    for name in ("prompt_logits", "decode_logits"):
        (rows, vocab), a = ours[name]
        (rrows, kept), b = ref[prefix + name]
        if rows != rrows:
            problems.append(f"{name}: {rows} rows, HF {rrows}")
            continue
        for r in range(rows):
            row = a[r * vocab:(r + 1) * vocab]
            worst = max(worst, max(abs(x - y) for x, y in zip(row[:kept], b[r * kept:(r + 1) * kept])))
            if any(x != 0.0 for x in row[kept:]):
                problems.append(f"{name}: row {r} has nonzero logits past column {kept}")
    print(f"{prefix} max |diff| {worst:.3g}")
    if worst > tol:
        problems.append(f"max |diff| {worst:.3g} > {tol:g}")
    print("FAIL: " + "; ".join(problems) if problems else "PASS")


if __name__ == "__main__":
    main()
