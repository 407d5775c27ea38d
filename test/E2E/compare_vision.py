#!/usr/bin/env python3
"""Compares two qwen-vision-embed outputs (stdlib only):

  compare_vision.py A.safetensors B.safetensors MAX_ABS

Both hold `embeddings` and `grid_thw`. Prints PASS when the grids and shapes
are equal and max |A - B| <= MAX_ABS, else FAIL; the FP8 tests compare an
artifact on an fp8 checkpoint with one on the same weights dequantized."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_vision import read_safetensors  # noqa: E402


def main():
    a, b, max_abs = read_safetensors(sys.argv[1]), read_safetensors(sys.argv[2]), float(sys.argv[3])
    shape, got = a["embeddings"]
    want_shape, want = b["embeddings"]
    grids_equal = a["grid_thw"][1] == b["grid_thw"][1]
    diff = max(abs(x - y) for x, y in zip(got, want)) if shape == want_shape else math.inf
    ok = grids_equal and diff <= max_abs
    print(f"{'PASS' if ok else 'FAIL'}: embeddings {shape} vs {want_shape}, "
          f"grids {'equal' if grids_equal else 'differ'}, max |diff| {diff:.3g} <= {max_abs:g} "
          f"(max |B| {max(abs(y) for y in want):.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
